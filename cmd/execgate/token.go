package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/execgate/execgate/gateway"
)

// This file registers `execgate token`: mint a signed token for operators,
// scripts and tests.

func init() {
	register("token", "print a signed JWT (--key FILE --sub S --roles R1,R2 --ttl 15m --iss I --aud A)", runToken)
}

func runToken(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("execgate token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "signing key file: an HMAC secret or a private key PEM (mode 0600)")
	kid := fs.String("kid", "", "key id written in the token header (default: the key's configured id, \"default\")")
	alg := fs.String("alg", "", "algorithm (default: from the key: HS256, RS256, ES256/384/512, EdDSA)")
	sub := fs.String("sub", "", "subject")
	roles := fs.String("roles", "", "comma-separated roles")
	ttl := fs.Duration("ttl", 15*time.Minute, "lifetime")
	iss := fs.String("iss", "", "issuer (must match the gateway's jwt.issuer)")
	aud := fs.String("aud", "", "audience (must match the gateway's jwt.audience)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *key == "" || *sub == "" || *iss == "" || *aud == "" {
		fmt.Fprintln(stderr, "execgate token: --key, --sub, --iss and --aud are required")
		return 2
	}
	k, err := gateway.LoadKey(gateway.KeyConfig{ID: *kid, File: *key, Algorithm: *alg}, true)
	if err != nil {
		fmt.Fprintf(stderr, "execgate token: %v\n", err)
		return 1
	}
	var rs []string
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			rs = append(rs, r)
		}
	}
	tok, _, err := gateway.NewSigner(k, *iss, *aud).Sign(*sub, rs, *ttl)
	if err != nil {
		fmt.Fprintf(stderr, "execgate token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
