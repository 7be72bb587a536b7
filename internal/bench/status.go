package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// MaxStatusSize bounds a /proc/PID/status file.
const MaxStatusSize = 64 << 10

// Memory is what /proc/PID/status says of a process's resident memory.
type Memory struct {
	RSS  int64 // VmRSS in bytes: resident now
	HWM  int64 // VmHWM in bytes: peak resident since start
	Anon int64 // RssAnon in bytes (heap, stacks); 0 when the kernel does not say
	File int64 // RssFile in bytes (mapped binary and files); 0 when the kernel does not say
}

// ParseStatus takes VmRSS and VmHWM from the text of /proc/PID/status.
func ParseStatus(data []byte) (Memory, error) {
	if len(data) > MaxStatusSize {
		return Memory{}, fmt.Errorf("%w: %d bytes, at most %d", ErrStatusFormat, len(data), MaxStatusSize)
	}
	var m Memory
	var seenRSS, seenHWM, seenAnon, seenFile bool
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		var seen *bool
		switch string(key) {
		case "VmRSS":
			dst, seen = &m.RSS, &seenRSS
		case "VmHWM":
			dst, seen = &m.HWM, &seenHWM
		case "RssAnon":
			dst, seen = &m.Anon, &seenAnon
		case "RssFile":
			dst, seen = &m.File, &seenFile
		default:
			continue
		}
		if *seen {
			return Memory{}, fmt.Errorf("%w: %s appears twice", ErrStatusFormat, key)
		}
		*seen = true
		n, err := parseKB(val)
		if err != nil {
			return Memory{}, fmt.Errorf("%w: %s: %v", ErrStatusFormat, key, err)
		}
		*dst = n
	}
	if !seenRSS || !seenHWM {
		return Memory{}, fmt.Errorf("%w: VmRSS or VmHWM missing (is this a kernel thread or an exited process?)", ErrStatusFormat)
	}
	return m, nil
}

// parseKB reads "   1234 kB" into bytes.
func parseKB(val []byte) (int64, error) {
	num, ok := bytes.CutSuffix(bytes.TrimLeft(val, " \t"), []byte(" kB"))
	if !ok || len(num) == 0 || len(num) > 15 {
		return 0, fmt.Errorf("want \"<decimal> kB\", got %q", val)
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("want \"<decimal> kB\", got %q", val)
		}
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil {
		return 0, err
	}
	return n * 1024, nil
}

// ReadStatus reads the memory figures of a running process.
func ReadStatus(ctx context.Context, pid int) (Memory, error) {
	if err := ctx.Err(); err != nil {
		return Memory{}, err
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("bench: %w (memory figures need Linux /proc)", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxStatusSize+1))
	if err != nil {
		return Memory{}, err
	}
	return ParseStatus(data)
}

// Sampler polls a process's VmRSS in the background and keeps the largest.
type Sampler struct {
	stop func()
	done chan struct{}
	mu   sync.Mutex
	peak int64
	n    int
	err  error
}

// StartSampler polls pid every interval (at least 1ms) until Stop.
func StartSampler(ctx context.Context, pid int, every time.Duration) *Sampler {
	every = max(every, time.Millisecond)
	ctx, cancel := context.WithCancel(ctx)
	s := &Sampler{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			m, err := ReadStatus(ctx, pid)
			s.mu.Lock()
			if err != nil && ctx.Err() == nil && s.err == nil {
				s.err = err
			}
			if err == nil {
				s.peak = max(s.peak, m.RSS)
				s.n++
			}
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends the polling and returns the largest VmRSS seen, the number of
// samples and the first read error.
func (s *Sampler) Stop() (peak int64, samples int, err error) {
	s.stop()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.n, s.err
}
