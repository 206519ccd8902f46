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
	"path/filepath"
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

// workersRun is what the workers of one run returned.
type workersRun struct {
	start time.Time // when the workers began
	calls []callRecord
	pings []time.Duration // the round trips of the PINGs made during the run
	cpu   time.Duration   // the processor time of all the workers during the run
	// serverCPU is the servers' processor time from just before the
	// start to the end of the run.
	serverCPU time.Duration
}

// cpuMeter tells the servers' processor time so far.
type cpuMeter func(context.Context) (time.Duration, error)

// runWorkers runs one worker process per job, starts them all at the same
// moment once every one is ready, and returns every worker's records with
// the start time. run bounds the jobs (their Duration, or a sale's wait).
// serverCPU, when not nil, is read just before the start and after the
// end.
func runWorkers(ctx context.Context, jobs []workerJob, run time.Duration, serverCPU cpuMeter) (workersRun, error) {
	exe, err := os.Executable()
	if err != nil {
		return workersRun{}, fmt.Errorf("finding this program to start its workers: %w", err)
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
			return workersRun{}, err
		}
		workers = append(workers, w)
	}
	for i, w := range workers {
		var ready workerReady
		if err := w.read(&ready); err != nil || !ready.Ready {
			return workersRun{}, w.failed(i, "getting ready", err, ready.Err)
		}
	}
	var cpuBefore time.Duration
	if serverCPU != nil {
		if cpuBefore, err = serverCPU(ctx); err != nil {
			return workersRun{}, err
		}
	}
	start := time.Now().Add(startLead)
	for i, w := range workers {
		if err := json.NewEncoder(w.stdin).Encode(workerStart{Start: start.UnixNano()}); err != nil {
			return workersRun{}, w.failed(i, "starting", err, "")
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
		return workersRun{}, err
	}
	out := workersRun{start: start}
	if serverCPU != nil {
		cpuAfter, err := serverCPU(ctx)
		if err != nil {
			return workersRun{}, err
		}
		out.serverCPU = cpuAfter - cpuBefore
	}
	for _, r := range results {
		out.calls = append(out.calls, r.Calls...)
		out.cpu += time.Duration(r.CPU)
		for _, p := range r.Pings {
			out.pings = append(out.pings, time.Duration(p))
		}
	}
	if err := dumpRecords(jobs, out); err != nil {
		return workersRun{}, err
	}
	return out, nil
}

// recordsEnv names a directory where, when set, every multi-process run
// leaves its records: one JSON file per run, named after its lock name,
// for a closer look than the tables give.
const recordsEnv = "LOCKBENCH_RECORDS"

// dumpRecords writes the records of one run to the directory recordsEnv
// names, if any.
func dumpRecords(jobs []workerJob, run workersRun) error {
	dir := os.Getenv(recordsEnv)
	if dir == "" || len(jobs) == 0 {
		return nil
	}
	name := strings.NewReplacer(":", "_", "/", "_").Replace(jobs[0].Name)
	data, err := json.Marshal(struct {
		Jobs  []workerJob  `json:"jobs"`
		Start int64        `json:"start"`
		Calls []callRecord `json:"calls"`
	}{jobs, run.start.UnixNano(), run.calls})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".json"), data, 0o644)
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
