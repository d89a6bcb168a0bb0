package socketio

import (
	"fmt"
	"slices"
	"testing"
)

func TestRoomSetIsASetSmallOrLarge(t *testing.T) {
	for _, n := range []int{1, maxRoomSlice, maxRoomSlice + 1, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var s roomSet
			var want []Room
			for i := range n {
				r := Room(fmt.Sprint("room", i))
				s.add(r)
				s.add(r) // twice: still one
				want = append(want, r)
			}
			if got := sorted(s.rooms()); !slices.Equal(got, sorted(want)) {
				t.Fatalf("rooms %v, want %v", got, want)
			}
			if large := s.set != nil; large != (n > maxRoomSlice) {
				t.Fatalf("with %d rooms: map %v", n, large)
			}
			for _, r := range want[:n/2] {
				s.remove(r)
			}
			s.remove("never joined")
			if got := sorted(s.rooms()); !slices.Equal(got, sorted(want[n/2:])) {
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
