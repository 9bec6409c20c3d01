package sidecar

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// logRotateBytes is the size at which the log file is rotated.
const logRotateBytes = 10 << 20

// NewLogger builds the sidecar's JSON logger: to stderr, and also to
// cfg.LogFile when set. The returned closer closes the file.
func NewLogger(cfg Config, stderr io.Writer) (*slog.Logger, io.Closer, error) {
	var lvl slog.Level
	switch strings.ToLower(cfg.LogLevel) {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		lvl = slog.LevelInfo
	}
	w := stderr
	var closer io.Closer = nopCloser{}
	if cfg.LogFile != "" {
		f, err := OpenRotatingFile(cfg.LogFile, logRotateBytes)
		if err != nil {
			return nil, nil, err
		}
		w, closer = io.MultiWriter(stderr, f), f
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})), closer, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// RotatingFile is an append-only log file that is renamed to <path>.1
// (replacing the previous one) when it reaches max bytes, so the log never
// grows without bound.
type RotatingFile struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
}

// OpenRotatingFile opens (or creates, mode 0600) path for appending.
func OpenRotatingFile(path string, max int64) (*RotatingFile, error) {
	r := &RotatingFile{path: path, max: max}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log %s: %w", r.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("stat log %s: %w", r.path, err)
	}
	r.f, r.size = f, fi.Size()
	return nil
}

// Write appends p, rotating first when p would cross the limit.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	if r.size > 0 && r.size+int64(len(p)) > r.max {
		if err := r.f.Close(); err != nil {
			return 0, err
		}
		r.f = nil
		// A failed rename only means the file keeps growing; reopening
		// must still happen so logging goes on.
		_ = os.Rename(r.path, r.path+".1")
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// Close closes the file.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
