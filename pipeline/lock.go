package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// ErrLocked means another cdrbill process holds the data folder's lock.
var ErrLocked = errors.New("another cdrbill run holds the lock")

// Lock takes the data folder's lock (staging/cdrbill.lock) so that two runs never work on the
// same staging and outputs at once. With wait it waits for the other run to finish; otherwise it
// fails at once with ErrLocked. The returned function releases the lock.
func Lock(ctx context.Context, cfg *Config, wait bool) (func(), error) {
	if err := os.MkdirAll(cfg.Paths.Staging, 0o755); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	path := filepath.Join(cfg.Paths.Staging, "cdrbill.lock")
	fl := flock.New(path)
	var ok bool
	var err error
	if wait {
		ok, err = fl.TryLockContext(ctx, 500*time.Millisecond)
	} else {
		ok, err = fl.TryLock()
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w (%s); try again later or pass --wait", ErrLocked, path)
	}
	return func() { fl.Unlock() }, nil
}
