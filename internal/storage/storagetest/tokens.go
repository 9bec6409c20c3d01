package storagetest

import "testing"

func runTokens(t *testing.T, open Opener) {
	t.Skip("not written yet")
}
