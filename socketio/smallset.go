package socketio

import (
	"iter"
	"slices"
)

// smallSet is a set that costs little while it is small: the in-memory adapter's rooms of one
// socket, and members of one room. Most sockets are in a few rooms (their own and one or two
// more) and every socket's own room has one member; for those a slice costs a fraction of a
// map's memory. Past maxSmallSet elements the set becomes a map, so that large rooms and
// sockets in thousands of rooms stay fast.
type smallSet[T comparable] struct {
	list []T            // while the set is small
	set  map[T]struct{} // once it has grown past maxSmallSet; list is then nil
}

const maxSmallSet = 16

func (s *smallSet[T]) add(v T) {
	switch {
	case s.set != nil:
		s.set[v] = struct{}{}
	case slices.Contains(s.list, v):
	case len(s.list) < maxSmallSet:
		s.list = append(s.list, v)
	default:
		s.set = make(map[T]struct{}, 2*maxSmallSet)
		for _, x := range s.list {
			s.set[x] = struct{}{}
		}
		s.set[v] = struct{}{}
		s.list = nil
	}
}

func (s *smallSet[T]) remove(v T) {
	if s.set != nil {
		delete(s.set, v)
		return
	}
	if i := slices.Index(s.list, v); i >= 0 {
		s.list = slices.Delete(s.list, i, i+1)
	}
}

// has reports whether v is in the set; a nil set is empty.
func (s *smallSet[T]) has(v T) bool {
	switch {
	case s == nil:
		return false
	case s.set != nil:
		_, in := s.set[v]
		return in
	}
	return slices.Contains(s.list, v)
}

func (s *smallSet[T]) len() int {
	if s.set != nil {
		return len(s.set)
	}
	return len(s.list)
}

// all yields the elements; a nil set is empty. The set must not change meanwhile.
func (s *smallSet[T]) all() iter.Seq[T] {
	return func(yield func(T) bool) {
		switch {
		case s == nil:
		case s.set != nil:
			for v := range s.set {
				if !yield(v) {
					return
				}
			}
		default:
			for _, v := range s.list {
				if !yield(v) {
					return
				}
			}
		}
	}
}

// slice returns the elements in a new slice.
func (s *smallSet[T]) slice() []T {
	if s.set == nil {
		return slices.Clone(s.list)
	}
	return slices.AppendSeq(make([]T, 0, len(s.set)), s.all())
}
