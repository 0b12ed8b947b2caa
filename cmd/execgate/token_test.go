package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/execgate/execgate/gateway"
)

// cli runs one subcommand in-process.
func cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := dispatch(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestTokenMintsVerifiableTokens(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	secret := []byte("0123456789abcdef0123456789abcdef")
	if err := os.WriteFile(key, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli("token", "--key", key, "--sub", "alice", "--roles", "operator, viewer", "--ttl", "15m", "--iss", "I", "--aud", "A")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	ring, err := gateway.LoadKeyring([]gateway.KeyConfig{{File: key}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Default().JWT
	cfg.Issuer, cfg.Audience = "I", "A"
	v, err := gateway.NewVerifier(cfg, ring)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(strings.TrimSpace(out))
	if err != nil || p.Subject != "alice" || strings.Join(p.Roles, ",") != "operator,viewer" {
		t.Fatalf("got %+v, %v; want alice with operator,viewer", p, err)
	}
}

func TestTokenRefuses(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	if err := os.WriteFile(open, []byte("0123456789abcdef0123456789abcdef"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(open, 0o644)
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no key", []string{"--sub", "a", "--iss", "I", "--aud", "A"}, 2, "required"},
		{"no iss", []string{"--key", good, "--sub", "a", "--aud", "A"}, 2, "required"},
		{"key readable by others", []string{"--key", open, "--sub", "a", "--iss", "I", "--aud", "A"}, 1, "readable or writable by group or others"},
		{"bad subject", []string{"--key", good, "--sub", "../root", "--iss", "I", "--aud", "A"}, 1, "subject"},
		{"bad role", []string{"--key", good, "--sub", "a", "--roles", "a b", "--iss", "I", "--aud", "A"}, 1, "role"},
		{"stray argument", []string{"--key", good, "--sub", "a", "--iss", "I", "--aud", "A", "extra"}, 2, "required"},
	}
	for _, tc := range cases {
		code, out, errs := cli(append([]string{"token"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errs, tc.want) || out != "" {
			t.Errorf("%s: got %d %q %q, want %d and %q", tc.name, code, out, errs, tc.code, tc.want)
		}
	}
}

func TestTokenWithPrivateKey(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	priv := filepath.Join(dir, "ec.key")
	pubf := filepath.Join(dir, "ec.pub")
	_ = os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	_ = os.WriteFile(pubf, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
	code, out, errs := cli("token", "--key", priv, "--kid", "ec1", "--sub", "bob", "--iss", "I", "--aud", "A")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	ring, err := gateway.LoadKeyring([]gateway.KeyConfig{{ID: "ec1", File: pubf}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Default().JWT
	cfg.Issuer, cfg.Audience = "I", "A"
	v, _ := gateway.NewVerifier(cfg, ring)
	if p, err := v.Verify(strings.TrimSpace(out)); err != nil || p.Subject != "bob" || p.KeyID != "ec1" {
		t.Fatalf("got %+v, %v; want bob via ec1 (ES256)", p, err)
	}
}
