package storagetest

import "testing"

func runMessages(t *testing.T, open Opener) {
	t.Skip("not written yet")
}
