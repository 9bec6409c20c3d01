package dashboard

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/webpush"
)

// TestSharedKeysAcrossDashboards: with SharedKeys, two dashboards (two
// hubs with data directories of their own) push with one key pair, kept
// in the shared settings and in neither directory.
func TestSharedKeysAcrossDashboards(t *testing.T) {
	d, db, err := boltdriver.OpenDir(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dirA, dirB := t.TempDir(), t.TempDir()
	a, err := resolveKeys(Config{}, Deps{DataDir: dirA, SharedKeys: d.Settings()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := resolveKeys(Config{}, Deps{DataDir: dirB, SharedKeys: d.Settings()})
	if err != nil {
		t.Fatal(err)
	}
	if a.PublicKeyBase64() != b.PublicKeyBase64() {
		t.Fatal("two hubs on one store push with different VAPID keys")
	}
	for _, dir := range []string{dirA, dirB} {
		if _, err := os.Stat(filepath.Join(dir, webpush.KeysFileName)); !os.IsNotExist(err) {
			t.Fatalf("a key file in %s (%v)", dir, err)
		}
	}
	// Without SharedKeys: the data directory's file, as before.
	c, err := resolveKeys(Config{}, Deps{DataDir: dirA})
	if err != nil || c.PublicKeyBase64() == a.PublicKeyBase64() {
		t.Fatalf("file keys: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dirA, webpush.KeysFileName)); err != nil {
		t.Fatal(err)
	}
}
