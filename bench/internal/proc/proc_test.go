package proc

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	line := []byte("1234 (echo server) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 5 0 1 0 0\n")
	d, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if d != 3*time.Second {
		t.Fatalf("got %v, want 3s", d)
	}
}

func TestParseStatusRSS(t *testing.T) {
	n, err := parseStatusRSS([]byte("Name:\tx\nVmPeak:\t  10 kB\nVmRSS:\t    2048 kB\nThreads:\t1\n"))
	if err != nil || n != 2048*1024 {
		t.Fatalf("got %d, %v", n, err)
	}
}

func TestSelf(t *testing.T) {
	if _, err := CPUTime(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if n, err := RSS(os.Getpid()); err != nil || n <= 0 {
		t.Fatalf("rss %d, %v", n, err)
	}
	if _, err := RaiseNoFile(); err != nil {
		t.Fatal(err)
	}
}

func TestParseIOSyscalls(t *testing.T) {
	n, err := parseIOSyscalls([]byte("rchar: 10\nwchar: 20\nsyscr: 7\nsyscw: 5\nread_bytes: 0\n"))
	if err != nil || n != 12 {
		t.Fatalf("got %d, %v", n, err)
	}
	if _, err := Syscalls(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestParseMachineCPU(t *testing.T) {
	busy, total, err := parseMachineCPU([]byte("cpu  100 5 50 800 20 3 2 10 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	if err != nil || busy != 1700*time.Millisecond || total != 9900*time.Millisecond {
		t.Fatalf("got %v, %v, %v", busy, total, err)
	}
	if _, _, err := parseMachineCPU([]byte("intr 1 2 3\n")); err == nil {
		t.Fatal("accepted a line that is not cpu")
	}
	if _, _, err := MachineCPU(); err != nil {
		t.Fatal(err)
	}
}
