package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/agentcom/agentcom/internal/client"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Bounds of `task submit --file`: a line is one task (its description,
// metadata and verify commands are bounded by the hub far below this),
// and a file at most this many tasks.
const (
	maxTaskLine  = 256 << 10
	maxFileTasks = 100_000
	// maxLineErrors bounds how many bad lines are listed before giving up.
	maxLineErrors = 20
)

// fileTask is one line of a tasks file: the task object as given, and
// its line number.
type fileTask struct {
	line int
	obj  map[string]json.RawMessage
}

// readTaskLines reads a JSONL tasks file: one JSON task object per line
// (the fields of POST /api/tasks), blank lines skipped. It checks every
// line before anything is sent, and returns every bad line's error (up to
// maxLineErrors) with its line number.
func readTaskLines(r io.Reader, name string) ([]fileTask, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxTaskLine+1)
	var out []fileTask
	var bad []string
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if len(out) >= maxFileTasks {
			return nil, fmt.Errorf("%s: more than %d tasks; split the file", name, maxFileTasks)
		}
		if err := checkTaskLine(line); err != nil {
			bad = append(bad, fmt.Sprintf("%s:%d: %v", name, n, err))
			if len(bad) >= maxLineErrors {
				bad = append(bad, "(stopped at the first 20 bad lines)")
				break
			}
			continue
		}
		var obj map[string]json.RawMessage
		_ = json.Unmarshal(line, &obj) // checked above
		out = append(out, fileTask{line: n, obj: obj})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d KiB", name, n+1, maxTaskLine>>10)
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("nothing submitted; bad lines:\n  %s", strings.Join(bad, "\n  "))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no tasks", name)
	}
	return out, nil
}

// checkTaskLine checks what the client can: a JSON object with a
// non-empty description and no batch key. The hub checks the rest.
func checkTaskLine(line []byte) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil || obj == nil {
		return errors.New("not a JSON object")
	}
	var desc string
	if raw, ok := obj["description"]; !ok || json.Unmarshal(raw, &desc) != nil || strings.TrimSpace(desc) == "" {
		return errors.New("description: a non-empty string is required")
	}
	if _, ok := obj["key"]; ok {
		return errors.New(`key: not used with --file (depends_on takes task ids; "agentcom task batch" links tasks by key)`)
	}
	return nil
}

// submitFile submits the tasks of a file in chunks through POST
// /api/tasks/batch (each chunk all or nothing), in order, and returns
// what was submitted. A refused chunk stops the run: its tasks and the
// later ones are not submitted, and the error names the lines.
func submitFile(ctx context.Context, c *client.Client, ts []fileTask, name string) ([]fileSubmitted, error) {
	out := make([]fileSubmitted, 0, len(ts))
	for start := 0; start < len(ts); start += tasks.MaxBatch {
		chunk := ts[start:min(start+tasks.MaxBatch, len(ts))]
		items := make([]map[string]json.RawMessage, len(chunk))
		for i, ft := range chunk {
			item := make(map[string]json.RawMessage, len(ft.obj)+1)
			for k, v := range ft.obj {
				item[k] = v
			}
			item["key"] = json.RawMessage(strconv.Quote("line-" + strconv.Itoa(ft.line)))
			items[i] = item
		}
		body, err := json.Marshal(map[string]any{"tasks": items})
		if err != nil {
			return out, fmt.Errorf("encode lines %d-%d: %w", chunk[0].line, chunk[len(chunk)-1].line, err)
		}
		got, err := submitChunk(ctx, c, body)
		if err != nil {
			return out, chunkError(err, chunk, name, len(out))
		}
		if len(got) != len(chunk) {
			return out, fmt.Errorf("lines %d-%d: the hub answered %d tasks for %d", chunk[0].line, chunk[len(chunk)-1].line, len(got), len(chunk))
		}
		for i, s := range got {
			out = append(out, fileSubmitted{Line: chunk[i].line, Submitted: s.Submitted})
		}
	}
	return out, nil
}

// maxRateWaits bounds how many rate-limited answers in a row one chunk
// waits out before the run stops (with the default task limit a chunk
// passes after one wait; a hub that never lets it through is refusing).
const maxRateWaits = 20

// submitChunk posts one chunk, waiting as long as the hub asks when it
// answers rate_limited: the limiter refuses before reading the batch, so
// nothing of the chunk was stored and sending it again is safe. A file is
// many chunks, and the hub's task limit (20 requests/s after a burst of
// 50) would otherwise stop every large file part way.
func submitChunk(ctx context.Context, c *client.Client, body json.RawMessage) ([]client.BatchSubmitted, error) {
	for waits := 0; ; waits++ {
		got, err := c.SubmitBatchRaw(ctx, body)
		var ce *client.Error
		if err == nil || !errors.As(err, &ce) || waits == maxRateWaits {
			return got, err
		}
		wait, limited := ce.RetryAfter()
		if !limited {
			return got, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// fileSubmitted is one submitted line.
type fileSubmitted struct {
	Line int `json:"line"`
	client.Submitted
}

// batchField matches the item index of a batch validation error's field.
var batchField = regexp.MustCompile(`^tasks\[(\d+)\]\.?`)

// chunkError explains a refused chunk: each field error of the hub's
// answer on its line, and what was and was not submitted.
func chunkError(err error, chunk []fileTask, name string, done int) error {
	span := fmt.Sprintf("lines %d-%d", chunk[0].line, chunk[len(chunk)-1].line)
	var ce *client.Error
	var msgs []string
	if errors.As(err, &ce) {
		var b struct {
			Errors []struct {
				Field  string `json:"field"`
				Detail string `json:"detail"`
			} `json:"errors"`
		}
		if json.Unmarshal(ce.Body, &b) == nil {
			for i, fe := range b.Errors {
				if i == maxLineErrors {
					break
				}
				field, where := fe.Field, span
				if m := batchField.FindStringSubmatch(field); m != nil {
					if k, err := strconv.Atoi(m[1]); err == nil && k < len(chunk) {
						where, field = fmt.Sprintf("%s:%d", name, chunk[k].line), field[len(m[0]):]
					}
				}
				msgs = append(msgs, fmt.Sprintf("%s: %s: %s", where, safe(field), safe(fe.Detail)))
			}
		}
	}
	head := fmt.Sprintf("%s refused, nothing of them stored (%d tasks before them were submitted)", span, done)
	if len(msgs) == 0 {
		return fmt.Errorf("%s: %w", head, err)
	}
	return fmt.Errorf("%s:\n  %s", head, strings.Join(msgs, "\n  "))
}

// taskSubmitFile runs `task submit --file`: the ids are printed one per
// line in the file's order (with --json, line, id and status of each).
func taskSubmitFile(ctx context.Context, in *inv, api *apiOpts, path string) error {
	var r io.Reader
	name := path
	if path == "-" {
		r, name = os.Stdin, "stdin"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		defer f.Close()
		r = f
	}
	ts, err := readTaskLines(r, name)
	if err != nil {
		return err
	}
	subs, err := submitFile(ctx, api.client(), ts, name)
	if in.asJSON {
		if jerr := writeJSON(in.env.stdout, subs); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		for _, s := range subs {
			fmt.Fprintln(in.env.stdout, s.TaskID)
		}
	}
	return err
}
