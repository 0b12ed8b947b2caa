package gateway

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/golang-jwt/jwt/v5"
)

// Key is one loaded key: the id a token's kid names, its one algorithm and
// the key material (verification or signing).
type Key struct {
	ID        string
	Algorithm string
	Key       any // []byte, *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or their private forms
	Secret    bool
}

// keyIDRe is the form of a key id; tokens with a kid not in the keyring fail
// by map lookup, so path-like kids never reach a file system.
var keyIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

const (
	maxKeyFileBytes = 64 << 10
	minSecretBytes  = 32
)

// KeyError is an unusable key file.
type KeyError struct {
	File   string
	Reason string
}

// Error renders "key FILE: reason".
func (e *KeyError) Error() string { return fmt.Sprintf("key %s: %s", e.File, e.Reason) }

// Is makes every KeyError match ErrKey.
func (e *KeyError) Is(target error) bool { return target == ErrKey }

// readKeyFile reads a key file that only its owner may read.
func readKeyFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, &KeyError{File: path, Reason: err.Error()}
	}
	if !st.Mode().IsRegular() {
		return nil, &KeyError{File: path, Reason: "not a regular file"}
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, &KeyError{File: path, Reason: fmt.Sprintf("mode %04o: readable or writable by group or others (chmod 600)", st.Mode().Perm())}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &KeyError{File: path, Reason: err.Error()}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, &KeyError{File: path, Reason: err.Error()}
	}
	if len(data) > maxKeyFileBytes {
		return nil, &KeyError{File: path, Reason: "larger than 64 KiB"}
	}
	return data, nil
}

// LoadKey reads a key file: an HS256/384/512 secret (raw bytes, at least 32,
// one trailing newline ignored) or a PEM key. private asks for a signing key.
func LoadKey(kc KeyConfig, private bool) (*Key, error) {
	data, err := readKeyFile(kc.File)
	if err != nil {
		return nil, err
	}
	id := kc.ID
	if id == "" {
		id = "default"
	}
	if !keyIDRe.MatchString(id) {
		return nil, &KeyError{File: kc.File, Reason: fmt.Sprintf("id %q must match %s", id, keyIDRe)}
	}
	k, err := parseKey(data, private)
	if err != nil {
		return nil, &KeyError{File: kc.File, Reason: err.Error()}
	}
	k.ID = id
	if kc.Algorithm != "" {
		if !algorithmFits(kc.Algorithm, k) {
			return nil, &KeyError{File: kc.File, Reason: fmt.Sprintf("algorithm %s does not fit this key", kc.Algorithm)}
		}
		k.Algorithm = kc.Algorithm
	}
	return k, nil
}

func parseKey(data []byte, private bool) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		secret := bytes.TrimSuffix(bytes.TrimSuffix(data, []byte("\n")), []byte("\r"))
		if bytes.Contains(data, []byte("-----BEGIN")) {
			return nil, fmt.Errorf("malformed PEM")
		}
		if len(secret) < minSecretBytes {
			return nil, fmt.Errorf("HMAC secret of %d bytes: at least %d required", len(secret), minSecretBytes)
		}
		return &Key{Algorithm: "HS256", Key: secret, Secret: true}, nil
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		if private {
			return nil, fmt.Errorf("a private key is required to sign")
		}
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PUBLIC KEY":
		if private {
			return nil, fmt.Errorf("a private key is required to sign")
		}
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	if !private {
		if s, ok := key.(crypto.Signer); ok {
			key = s.Public()
		}
	}
	return keyFor(key)
}

func keyFor(key any) (*Key, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits: at least 2048 required", k.N.BitLen())
		}
		return &Key{Algorithm: "RS256", Key: k}, nil
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits: at least 2048 required", k.N.BitLen())
		}
		return &Key{Algorithm: "RS256", Key: k}, nil
	case *ecdsa.PublicKey:
		return ecKey(k.Curve, k)
	case *ecdsa.PrivateKey:
		return ecKey(k.Curve, k)
	case ed25519.PublicKey, ed25519.PrivateKey:
		return &Key{Algorithm: "EdDSA", Key: k}, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", key)
}

func ecKey(c elliptic.Curve, k any) (*Key, error) {
	switch c {
	case elliptic.P256():
		return &Key{Algorithm: "ES256", Key: k}, nil
	case elliptic.P384():
		return &Key{Algorithm: "ES384", Key: k}, nil
	case elliptic.P521():
		return &Key{Algorithm: "ES512", Key: k}, nil
	}
	return nil, fmt.Errorf("unsupported curve")
}

// algorithmFits reports whether alg may be used with k.
func algorithmFits(alg string, k *Key) bool {
	switch alg {
	case "HS256", "HS384", "HS512":
		return k.Secret
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return k.Algorithm == "RS256"
	case "ES256", "ES384", "ES512", "EdDSA":
		return k.Algorithm == alg
	}
	return false
}

// signingMethod returns the jwt method of a key.
func (k *Key) signingMethod() jwt.SigningMethod { return jwt.GetSigningMethod(k.Algorithm) }
