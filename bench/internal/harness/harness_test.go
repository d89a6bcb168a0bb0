package harness

import (
	"os/exec"
	"slices"
	"testing"
)

func TestRotate(t *testing.T) {
	impls := []string{"a", "b", "c"}
	for run, want := range [][]string{{"a", "b", "c"}, {"b", "c", "a"}, {"c", "a", "b"}, {"a", "b", "c"}} {
		if got := Rotate(impls, run); !slices.Equal(got, want) {
			t.Errorf("Rotate(run %d) = %v, want %v", run, got, want)
		}
	}
	if !slices.Equal(impls, []string{"a", "b", "c"}) {
		t.Fatalf("Rotate changed its argument: %v", impls)
	}
}

func TestLists(t *testing.T) {
	if got := SplitList(" a, ,b ,"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("SplitList = %q", got)
	}
	if got, err := IntList("1, 16,100"); err != nil || !slices.Equal(got, []int{1, 16, 100}) {
		t.Errorf("IntList = %v, %v", got, err)
	}
	for _, bad := range []string{"0", "-1", "x", "1,2.5"} {
		if _, err := IntList(bad); err == nil {
			t.Errorf("IntList(%q) accepted", bad)
		}
	}
}

// TestStartServer runs a shell that prints what a bench server prints, and
// one that prints something else.
func TestStartServer(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	srv, err := StartServer("fake", exec.Command("sh", "-c", "echo listening 127.0.0.1:1234; exec sleep 60"))
	if err != nil {
		t.Fatal(err)
	}
	if srv.Addr != "127.0.0.1:1234" || srv.PID <= 0 {
		t.Errorf("server %+v", srv)
	}
	srv.Stop()
	if _, err := StartServer("fake", exec.Command("sh", "-c", "echo hello; exec sleep 60")); err == nil {
		t.Fatal("a server that did not say listening was accepted")
	}
}
