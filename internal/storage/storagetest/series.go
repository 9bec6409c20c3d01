package storagetest

import "testing"

func runSeries(t *testing.T, open Opener) {
	t.Skip("not written yet")
}
