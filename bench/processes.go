package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// startLead is how long after the last worker said it is ready the workers
// begin, so that each has read the start time before it.
const startLead = 100 * time.Millisecond

// workerSlack bounds, beyond the job itself, how long a worker may take to
// start, warm up and hand its records over.
const workerSlack = 60 * time.Second

// A worker is one running worker process, seen from the parent.
type worker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *lockedBuffer
}

// lockedBuffer is a worker's standard error: exec writes it while the
// parent may read it to report a failure.
type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 {
		return len(p), nil // enough to say what went wrong
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runWorkers runs one worker process per job, starts them all at the same
// moment once every one is ready, and returns every worker's records with
// the start time. run bounds the jobs (their Duration, or a sale's wait).
func runWorkers(ctx context.Context, jobs []workerJob, run time.Duration) ([]callRecord, time.Time, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("finding this program to start its workers: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, run+workerSlack)
	defer cancel()

	workers := make([]*worker, 0, len(jobs))
	defer func() {
		for _, w := range workers {
			_ = w.stdin.Close()
			_ = w.cmd.Wait()
		}
	}()
	for _, job := range jobs {
		w, err := startWorker(ctx, exe, job)
		if err != nil {
			return nil, time.Time{}, err
		}
		workers = append(workers, w)
	}
	for i, w := range workers {
		var ready workerReady
		if err := w.read(&ready); err != nil || !ready.Ready {
			return nil, time.Time{}, w.failed(i, "getting ready", err, ready.Err)
		}
	}
	start := time.Now().Add(startLead)
	for i, w := range workers {
		if err := json.NewEncoder(w.stdin).Encode(workerStart{Start: start.UnixNano()}); err != nil {
			return nil, time.Time{}, w.failed(i, "starting", err, "")
		}
	}

	// Read every worker at once: one that fills its pipe blocks until
	// it is read.
	results := make([]workerResult, len(workers))
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.read(&results[i]); err != nil || results[i].Err != "" {
				errs[i] = w.failed(i, "running", err, results[i].Err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, time.Time{}, err
	}
	var calls []callRecord
	for _, r := range results {
		calls = append(calls, r.Calls...)
	}
	return calls, start, nil
}

// startWorker starts exe as a worker and sends it job.
func startWorker(ctx context.Context, exe string, job workerJob) (*worker, error) {
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), workerEnv+"=1")
	w := &worker{cmd: cmd, stderr: &lockedBuffer{}}
	cmd.Stderr = w.stderr
	var err error
	if w.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	w.lines = bufio.NewScanner(stdout)
	w.lines.Buffer(make([]byte, 64<<10), 256<<20)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting worker %d: %w", job.Proc, err)
	}
	if err := json.NewEncoder(w.stdin).Encode(job); err != nil {
		_ = w.stdin.Close()
		_ = cmd.Wait()
		return nil, fmt.Errorf("sending worker %d its job: %w", job.Proc, err)
	}
	return w, nil
}

// read decodes the worker's next line into v.
func (w *worker) read(v any) error { return readLine(w.lines, v) }

// failed describes why worker i failed at step.
func (w *worker) failed(i int, step string, err error, reported string) error {
	msg := fmt.Sprintf("worker %d %s", i, step)
	if reported != "" {
		msg += ": " + reported
	}
	if err != nil {
		msg += ": " + err.Error()
	}
	if s := strings.TrimSpace(w.stderr.String()); s != "" {
		msg += " (stderr: " + s + ")"
	}
	return errors.New(msg)
}
