package socketio

import "slices"

// roomSet is the set of rooms of one socket in the in-memory adapter. Most sockets are in a
// few rooms (their own and one or two more), for which a slice costs a fraction of a map's
// memory; a socket that joins more than maxRoomSlice rooms gets a map, so that joining
// thousands of rooms stays linear.
type roomSet struct {
	list []Room            // while the set is small
	set  map[Room]struct{} // once it has grown past maxRoomSlice; list is then nil
}

const maxRoomSlice = 16

func (s *roomSet) add(r Room) {
	switch {
	case s.set != nil:
		s.set[r] = struct{}{}
	case slices.Contains(s.list, r):
	case len(s.list) < maxRoomSlice:
		s.list = append(s.list, r)
	default:
		s.set = make(map[Room]struct{}, 2*maxRoomSlice)
		for _, x := range s.list {
			s.set[x] = struct{}{}
		}
		s.set[r] = struct{}{}
		s.list = nil
	}
}

func (s *roomSet) remove(r Room) {
	if s.set != nil {
		delete(s.set, r)
		return
	}
	if i := slices.Index(s.list, r); i >= 0 {
		s.list = slices.Delete(s.list, i, i+1)
	}
}

// rooms returns the rooms in a new slice.
func (s *roomSet) rooms() []Room {
	if s.set == nil {
		return slices.Clone(s.list)
	}
	rooms := make([]Room, 0, len(s.set))
	for r := range s.set {
		rooms = append(rooms, r)
	}
	return rooms
}
