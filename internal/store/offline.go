package store

import (
	"fmt"
	"os"
	"path/filepath"
)

// RestoreFile replaces the table file at path, which no process may have
// open (hub stopped, or before Open), with a verified copy of the backup
// at src. The current file, if any, is kept under aside when aside is not
// empty. The same steps as Table.Restore: verify the backup, copy it next
// to path, fsync, verify the copy, rename over path. It returns the record
// count.
func RestoreFile(src, path, aside string) (int, error) {
	name := filepath.Base(path)
	want, err := CheckFile(src)
	if err != nil {
		return 0, fmt.Errorf("restore %s: backup unusable: %w", name, err)
	}
	in, err := os.Open(src)
	if err != nil {
		return 0, fmt.Errorf("restore %s: %w", name, err)
	}
	tmp := path + ".restore"
	err = copyFile(tmp, in)
	in.Close()
	if err != nil {
		return 0, fmt.Errorf("restore %s: %w", name, err)
	}
	if got, err := CheckFile(tmp); err != nil || got != want {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("restore %s: copy of the backup fails verification (%d of %d records): %v", name, got, want, err)
	}
	if aside != "" {
		if err := keepAside(path, aside); err != nil {
			_ = os.Remove(tmp)
			return 0, fmt.Errorf("restore %s: keep old file: %w", name, err)
		}
	}
	if err := renameSynced(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("restore %s: %w", name, err)
	}
	return want, nil
}

// ResetFile replaces the table file at path, which no process may have
// open, with an empty table, keeping the current file under aside when
// aside is not empty.
func ResetFile(path, aside string) error {
	name := filepath.Base(path)
	tmp := path + ".empty"
	_ = os.Remove(tmp)
	b, err := openBolt(tmp)
	if err != nil {
		return fmt.Errorf("reset %s: %w", name, err)
	}
	if err := b.Close(); err != nil {
		return fmt.Errorf("reset %s: %w", name, err)
	}
	if aside != "" {
		if err := keepAside(path, aside); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("reset %s: keep old file: %w", name, err)
		}
	}
	if err := renameSynced(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("reset %s: %w", name, err)
	}
	return nil
}
