package storagetest

import "testing"

func runSettings(t *testing.T, open Opener) {
	t.Skip("not written yet")
}
