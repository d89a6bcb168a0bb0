// Package proc reads the few Linux /proc numbers the harness reports (CPU time
// and resident memory of a process) and raises the open-file limit.
package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ClockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat. It is 100
// on every Linux architecture Go supports.
const ClockTicks = 100

// CPUTime returns utime+stime of process pid (all its threads) from
// /proc/PID/stat.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU extracts utime (field 14) and stime (field 15). The command name
// (field 2) is in parentheses and may contain spaces, so fields are counted
// from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc: malformed stat line")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14 → f[11], stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("proc: short stat line (%d fields)", len(f))
	}
	ut, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proc: utime: %w", err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proc: stime: %w", err)
	}
	return time.Duration(ut+st) * time.Second / ClockTicks, nil
}

// RSS returns VmRSS of process pid in bytes, from /proc/PID/status.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusRSS(b)
}

func parseStatusRSS(b []byte) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("proc: unexpected VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc: VmRSS: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("proc: no VmRSS line")
}

// RaiseNoFile raises this process's RLIMIT_NOFILE as far as it may: soft and
// hard limit both to the kernel's ceiling (/proc/sys/fs/nr_open) when the
// process may raise its hard limit (root with CAP_SYS_RESOURCE), otherwise the
// soft limit to the hard one. It returns the new soft limit. Children started
// afterwards inherit it.
func RaiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if ceil, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && ceil > lim.Max {
			up := syscall.Rlimit{Cur: ceil, Max: ceil}
			if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
				return ceil, nil
			}
		}
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return lim.Cur, nil
}

// Syscalls returns syscr+syscw of process pid from /proc/PID/io: the number
// of read-like and write-like system calls (read, readv, recvmsg, write,
// writev, sendmsg, ...) its threads have made.
func Syscalls(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	return parseIOSyscalls(b)
}

func parseIOSyscalls(b []byte) (int64, error) {
	var total int64
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "syscr" && k != "syscw") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc: %s: %w", k, err)
		}
		total += n
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("proc: no syscr/syscw in io")
	}
	return total, nil
}

// MachineCPU returns the CPU time all CPUs of the machine spent busy (user,
// nice, system, irq, softirq, steal) and in total (busy plus idle and
// iowait), from the first line of /proc/stat.
func MachineCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseMachineCPU(b)
}

func parseMachineCPU(b []byte) (busy, total time.Duration, err error) {
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("proc: unexpected /proc/stat line %q", line)
	}
	var v [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range v {
		if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("proc: /proc/stat: %w", err)
		}
	}
	tick := func(n uint64) time.Duration { return time.Duration(n) * time.Second / ClockTicks }
	busy = tick(v[0] + v[1] + v[2] + v[5] + v[6] + v[7])
	return busy, busy + tick(v[3]+v[4]), nil
}
