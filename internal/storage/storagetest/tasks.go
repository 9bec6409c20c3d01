package storagetest

import "testing"

func runTasks(t *testing.T, open Opener) {
	t.Skip("not written yet")
}
