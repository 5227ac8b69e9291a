package pipeline

import (
	"context"
	"sync"
)

// pqWriter encodes the Parquet staging files of one input file on a goroutine of its own, so
// that parsing, normalising, hashing and de-duplicating (the calling goroutine, which decides
// everything: which rows, in which order, to which file) and Parquet encoding plus compression
// use both cores. The calling goroutine hands it full batches of rows (pqFile.write); jobs run one
// at a time in the order they were sent, so every Parquet file receives its rows in file order,
// exactly as when they were written in place.
//
// The first job that fails stops the goroutine; the caller learns of it at its next send or at
// wait, and aborts. stop ends the goroutine without running the jobs still queued (abort).
type pqWriter struct {
	jobs     chan func() error
	quit     chan struct{} // closed by stop: drop the queued jobs
	failed   chan struct{} // closed when a job failed; err is set before
	done     chan struct{} // closed when the goroutine has returned
	err      error
	stopOnce sync.Once
}

// pqFault, when set (tests only), is called on the writer's goroutine before each job with what
// the job does ("batch" or "finish"); an error it returns is that job's error.
var pqFault func(job string) error

func runFault(job string) error {
	if pqFault == nil {
		return nil
	}
	return pqFault(job)
}

// pqWriterQueue is how many batches may wait for the writer: enough to ride out an uneven row
// mix, few enough to bound memory (a batch is pqBatchRows rows).
const pqWriterQueue = 8

func newPQWriter() *pqWriter {
	w := &pqWriter{jobs: make(chan func() error, pqWriterQueue), quit: make(chan struct{}),
		failed: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *pqWriter) loop() {
	defer close(w.done)
	for job := range w.jobs {
		select {
		case <-w.quit:
			return
		default:
		}
		if err := job(); err != nil {
			w.err = err
			close(w.failed)
			return
		}
	}
}

// send queues a job. It returns the error of a job that failed earlier, or the context's error.
func (w *pqWriter) send(ctx context.Context, job func() error) error {
	select {
	case <-w.failed:
		return w.err
	default:
	}
	select {
	case w.jobs <- job:
		return nil
	case <-w.failed:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait runs the queued jobs to the end and stops the goroutine; it returns the first job error.
func (w *pqWriter) wait() error {
	w.stopOnce.Do(func() { close(w.jobs) })
	<-w.done
	return w.err
}

// stop ends the goroutine as soon as the job in progress (if any) returns, dropping the rest, and
// waits for it: the files may then be closed and removed.
func (w *pqWriter) stop() {
	w.stopOnce.Do(func() {
		close(w.quit)
		close(w.jobs)
	})
	<-w.done
}
