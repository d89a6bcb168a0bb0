package socketio

import (
	"fmt"
	"slices"
	"testing"
)

func TestSmallSetIsASetSmallOrLarge(t *testing.T) {
	for _, n := range []int{1, maxSmallSet, maxSmallSet + 1, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var s smallSet[Room]
			var want []Room
			for i := range n {
				r := Room(fmt.Sprint("room", i))
				s.add(r)
				s.add(r) // twice: still one
				want = append(want, r)
			}
			if got := sorted(s.slice()); !slices.Equal(got, sorted(want)) {
				t.Fatalf("rooms %v, want %v", got, want)
			}
			for _, r := range want {
				if !s.has(r) {
					t.Fatalf("has(%q) = false", r)
				}
			}
			if s.has("never joined") || s.len() != n || len(slices.Collect(s.all())) != n {
				t.Fatalf("has(never joined) %v, len %d, all %d, want %d", s.has("never joined"), s.len(), len(slices.Collect(s.all())), n)
			}
			if large := s.set != nil; large != (n > maxSmallSet) {
				t.Fatalf("with %d rooms: map %v", n, large)
			}
			for _, r := range want[:n/2] {
				s.remove(r)
			}
			s.remove("never joined")
			if got := sorted(s.slice()); !slices.Equal(got, sorted(want[n/2:])) {
				t.Fatalf("after removing half: %v, want %v", got, want[n/2:])
			}
		})
	}
}

func sorted(rooms []Room) []Room {
	rooms = slices.Clone(rooms)
	slices.Sort(rooms)
	return rooms
}
