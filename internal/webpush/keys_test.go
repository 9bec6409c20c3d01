package webpush

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/pgdriver"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestLoadOrCreateKeysPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", KeysFileName)
	first, err := LoadOrCreateKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", info.Mode().Perm())
	}
	if got := len(b64(t, first.PublicKeyBase64())); got != PublicKeySize {
		t.Errorf("public key decodes to %d bytes", got)
	}
	if strings.ContainsAny(first.PublicKeyBase64(), "=+/") {
		t.Errorf("public key %q is not unpadded base64url", first.PublicKeyBase64())
	}

	// A restart loads the same pair.
	second, err := LoadOrCreateKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if second.PublicKeyBase64() != first.PublicKeyBase64() || second.PrivateKeyBase64() != first.PrivateKeyBase64() {
		t.Fatal("reloaded keys differ from the generated ones")
	}

	// The file holds the same encoding as the environment variables.
	var kf keyFile
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &kf); err != nil {
		t.Fatal(err)
	}
	fromEnv, err := KeysFromBase64(kf.PublicKey, kf.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if fromEnv.PublicKeyBase64() != first.PublicKeyBase64() {
		t.Fatal("file keys do not load through KeysFromBase64")
	}

	// No temporary file is left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only the key file", len(entries))
	}
}

func TestLoadOrCreateKeysBadFile(t *testing.T) {
	good, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	goodJSON := `{"public_key":"` + good.PublicKeyBase64() + `","private_key":"` + good.PrivateKeyBase64() + `"}`
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"world readable", goodJSON, 0o644, "chmod 600"},
		{"group writable", goodJSON, 0o620, "chmod 600"},
		{"empty", "", 0o600, "not JSON"},
		{"garbage", "\x00\x01 not json", 0o600, "not JSON"},
		{"missing private", `{"public_key":"` + good.PublicKeyBase64() + `"}`, 0o600, "both required"},
		{"bad base64", `{"public_key":"!!","private_key":"` + good.PrivateKeyBase64() + `"}`, 0o600, "not base64url"},
		{"mismatched pair", `{"public_key":"` + other.PublicKeyBase64() + `","private_key":"` + good.PrivateKeyBase64() + `"}`, 0o600, "does not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && tc.mode != 0o600 {
				t.Skip("no Unix permissions")
			}
			path := filepath.Join(t.TempDir(), KeysFileName)
			if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // umask-proof
				t.Fatal(err)
			}
			_, err := LoadOrCreateKeys(path)
			if !errors.Is(err, ErrBadKeyFile) {
				t.Fatalf("err = %v, want ErrBadKeyFile", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q should name the file and say %q", err, tc.want)
			}
			// The file is never overwritten.
			if data, _ := os.ReadFile(path); string(data) != tc.content {
				t.Error("bad key file was modified")
			}
		})
	}

	t.Run("directory", func(t *testing.T) {
		path := t.TempDir()
		if _, err := LoadOrCreateKeys(path); !errors.Is(err, ErrBadKeyFile) {
			t.Fatalf("err = %v, want ErrBadKeyFile", err)
		}
	})
}

// TestCreateKeyFileKeepsExisting covers the race where another process
// creates the file first: its keys win and are not overwritten.
func TestCreateKeyFileKeepsExisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeysFileName)
	first, err := LoadOrCreateKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	second, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	created, err := createKeyFile(path, second)
	if err != nil || created {
		t.Fatalf("createKeyFile over an existing file = %v, %v; want false, nil", created, err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("existing key file was replaced")
	}
	loaded, err := LoadOrCreateKeys(path)
	if err != nil || loaded.PublicKeyBase64() != first.PublicKeyBase64() {
		t.Fatalf("reload: %v", err)
	}
}

func TestKeysFromBase64(t *testing.T) {
	// The RFC 8291 application-server pair is a valid P-256 pair.
	k, err := KeysFromBase64(rfcASPublic, rfcASPrivate)
	if err != nil {
		t.Fatal(err)
	}
	if k.PublicKeyBase64() != rfcASPublic || k.PrivateKeyBase64() != rfcASPrivate {
		t.Fatal("keys do not round-trip their encoding")
	}
	if !bytes.Equal(k.PublicKey(), b64(t, rfcASPublic)) {
		t.Fatal("PublicKey bytes differ")
	}
	// Padding and surrounding whitespace (as in a .env file) are accepted.
	if _, err := KeysFromBase64(" "+rfcASPublic+"=\n", rfcASPrivate+"="); err != nil {
		t.Errorf("padded keys: %v", err)
	}

	bad := []struct{ name, pub, priv, want string }{
		{"empty", "", "", "public key is 0 bytes"},
		{"std alphabet", strings.ReplaceAll(rfcASPublic, "_", "/"), rfcASPrivate, "not base64url"},
		{"short public", rfcASPublic[:40], rfcASPrivate, "want 65"},
		{"short private", rfcASPublic, rfcASPrivate[:20], "want 32"},
		{"mismatch", rfcUAPublic, rfcASPrivate, "does not match"},
		{"zero scalar", rfcASPublic, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "private key"},
	}
	for _, tc := range bad {
		_, err := KeysFromBase64(tc.pub, tc.priv)
		if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrBadKey mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestResolveKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeysFileName)
	k, err := ResolveKeys(rfcASPublic, rfcASPrivate, path)
	if err != nil || k.PublicKeyBase64() != rfcASPublic {
		t.Fatalf("env keys: %v", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("env keys wrote a key file")
	}
	for _, half := range [][2]string{{rfcASPublic, ""}, {"", rfcASPrivate}} {
		if _, err := ResolveKeys(half[0], half[1], path); !errors.Is(err, ErrBadKey) {
			t.Errorf("half-set env %q/%q: err = %v", half[0], half[1], err)
		}
	}
	fromFile, err := ResolveKeys("", " ", path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ResolveKeys("", "", path)
	if err != nil || again.PublicKeyBase64() != fromFile.PublicKeyBase64() {
		t.Fatalf("file keys not reused: %v", err)
	}
}

// TestSharedKeys: hubs on one store share one key pair, created by the
// first; the environment still wins, and a damaged stored value is an
// error, never silently replaced.
func TestSharedKeys(t *testing.T) {
	for name, open := range map[string]func(*testing.T) storage.SettingsStore{"bolt": boltSettings, "postgres": pgSettings} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			a, err := ResolveSharedKeys(t.Context(), "", "", s)
			if err != nil {
				t.Fatal(err)
			}
			b, err := LoadOrCreateSharedKeys(t.Context(), s)
			if err != nil || b.PublicKeyBase64() != a.PublicKeyBase64() || b.PrivateKeyBase64() != a.PrivateKeyBase64() {
				t.Fatalf("second hub got other keys (%v)", err)
			}
			env, _ := GenerateKeys()
			if k, err := ResolveSharedKeys(t.Context(), env.PublicKeyBase64(), env.PrivateKeyBase64(), s); err != nil || k.PublicKeyBase64() != env.PublicKeyBase64() {
				t.Fatalf("environment keys: %v", err)
			}
			if _, err := ResolveSharedKeys(t.Context(), env.PublicKeyBase64(), "", s); !errors.Is(err, ErrBadKey) {
				t.Fatalf("half the environment: %v", err)
			}
			if err := s.Put(t.Context(), SharedKeysSetting, []byte(`{"public_key":"x"}`)); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadOrCreateSharedKeys(t.Context(), s); !errors.Is(err, ErrBadKeyFile) {
				t.Fatalf("damaged stored keys: %v", err)
			}
		})
	}
}

func boltSettings(t *testing.T) storage.SettingsStore {
	t.Helper()
	db, d := openStore(t, t.TempDir())
	t.Cleanup(func() { db.Close() })
	return d.Settings()
}

func pgSettings(t *testing.T) storage.SettingsStore {
	t.Helper()
	d, err := pgdriver.Open(t.Context(), testenv.Postgres(t), pgdriver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d.Settings()
}
