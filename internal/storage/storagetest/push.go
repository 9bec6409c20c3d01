package storagetest

import "testing"

func runPushSubscriptions(t *testing.T, open Opener) {
	t.Skip("not written yet")
}
