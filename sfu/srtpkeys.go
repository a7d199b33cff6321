package sfu

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
)

// srtpKeys are the keys of one PeerConnection's SRTP, the server's DTLS
// role being server: it encrypts with the server_write key and salt and
// the peer with the client_write ones (inKey, inSalt).
type srtpKeys struct {
	profile       srtp.ProtectionProfile
	key, salt     []byte
	inKey, inSalt []byte
}

// keyCapture learns one PeerConnection's SRTP keys from its DTLS
// handshake, so that forwarded packets can be encrypted and sent without
// pion's SRTP session, mux and ICE layers (direct.go). pion does not hand
// the keys out; what it does hand out is the ServerHello the server sends
// (its random, the cipher suite and the SRTP profile) and, through the
// key log, the client random and the master secret. From those the keys
// follow as RFC 5764 says (the exporter of RFC 5705). When the server is
// the DTLS client (a relay link it offered) nothing is captured and pion's
// writer is used.
type keyCapture struct {
	mu           sync.Mutex
	serverRandom []byte
	suite        dtls.CipherSuiteID
	profile      srtp.ProtectionProfile
	clientRandom []byte
	master       []byte
	keys         *srtpKeys
	err          error
}

// serverHello is the DTLS ServerHello hook: it notes what the keys need
// and sends the message unchanged.
func (k *keyCapture) serverHello(m handshake.MessageServerHello) handshake.Message {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := m.Random.MarshalFixed()
	k.serverRandom = r[:]
	if m.CipherSuiteID != nil {
		k.suite = dtls.CipherSuiteID(*m.CipherSuiteID)
	}
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) > 0 {
			k.profile = srtpProfileOf(u.ProtectionProfiles[0])
		}
	}
	return &m
}

// Write takes the DTLS key log: "CLIENT_RANDOM <client random> <master
// secret>" in hex, once per handshake.
func (k *keyCapture) Write(p []byte) (int, error) {
	f := strings.Fields(string(bytes.TrimSpace(p)))
	if len(f) != 3 || f[0] != "CLIENT_RANDOM" {
		return len(p), nil
	}
	cr, err1 := hex.DecodeString(f[1])
	ms, err2 := hex.DecodeString(f[2])
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := errors.Join(err1, err2); err != nil {
		k.err = fmt.Errorf("dtls key log: %w", err)
		return len(p), nil
	}
	k.clientRandom, k.master = cr, ms
	return len(p), nil
}

// outKeys returns the server's SRTP keys once the handshake is over, or
// nil when they cannot be known (the server was the DTLS client, or an
// unknown cipher suite or profile).
func (k *keyCapture) outKeys() *srtpKeys {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys != nil || k.err != nil {
		return k.keys
	}
	if k.serverRandom == nil || k.master == nil || k.profile == 0 {
		return nil
	}
	k.keys, k.err = exportSRTPKeys(k.master, k.clientRandom, k.serverRandom, k.suite, k.profile)
	// The master secret is no longer needed: keep no more of it than pion does.
	clear(k.master)
	k.master = nil
	return k.keys
}

// exportSRTPKeys derives the write keys and salts of both sides (RFC 5764
// 4.2: client key, server key, client salt, server salt, from the
// exporter labelled EXTRACTOR-dtls_srtp over the two randoms).
func exportSRTPKeys(master, clientRandom, serverRandom []byte, suite dtls.CipherSuiteID, profile srtp.ProtectionProfile) (*srtpKeys, error) {
	keyLen, err := profile.KeyLen()
	if err != nil {
		return nil, err
	}
	saltLen, err := profile.SaltLen()
	if err != nil {
		return nil, err
	}
	seed := append([]byte("EXTRACTOR-dtls_srtp"), clientRandom...)
	seed = append(seed, serverRandom...)
	m, err := prf.PHash(master, seed, 2*(keyLen+saltLen), prfHash(suite))
	if err != nil {
		return nil, err
	}
	return &srtpKeys{profile: profile,
		key: m[keyLen : 2*keyLen], salt: m[2*keyLen+saltLen:],
		inKey: m[:keyLen], inSalt: m[2*keyLen : 2*keyLen+saltLen]}, nil
}

// prfHash is the TLS 1.2 PRF hash of a cipher suite: SHA-384 for the
// suites named so, SHA-256 for every other DTLS 1.2 suite.
func prfHash(suite dtls.CipherSuiteID) func() hash.Hash {
	if strings.HasSuffix(dtls.CipherSuiteName(suite), "SHA384") {
		return sha512.New384
	}
	return sha256.New
}

// srtpProfileOf maps the DTLS use_srtp profile to pion's SRTP one: both
// use the IANA numbers.
func srtpProfileOf(p extension.SRTPProtectionProfile) srtp.ProtectionProfile {
	return srtp.ProtectionProfile(p)
}
