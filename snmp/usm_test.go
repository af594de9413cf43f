package snmp

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"encoding/hex"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 3414 A.3.1 and A.3.2: password "maplesyrup", engine ID
// 00…02. RFC 7860 gives no vectors; the SHA-256 one is the value other
// implementations publish for the same inputs (net-snmp interoperability
// is tested in netsnmp_test.go).
func TestKeyLocalization(t *testing.T) {
	engine := unhex(t, "000000000000000000000002")
	for _, c := range []struct {
		hash    crypto.Hash
		ku, kul string
	}{
		{crypto.MD5, "9faf3283884e92834ebc9847d8edd963", "526f5eed9fcce26f8964c2930787d82b"},
		{crypto.SHA1, "9fb5cc0381497b3793528939ff788d5d79145211", "6695febc9288e36282235fc7151f128497b38f3f"},
		{crypto.SHA256, "", "8982e0e549e866db361a6b625d84cccc11162d453ee8ce3a6445c2d6776f0f8b"},
	} {
		ku := passwordToKey(c.hash, []byte("maplesyrup"))
		if c.ku != "" && hex.EncodeToString(ku) != c.ku {
			t.Errorf("%v Ku %x, want %s", c.hash, ku, c.ku)
		}
		if got := hex.EncodeToString(localizeKey(c.hash, ku, engine)); got != c.kul {
			t.Errorf("%v Kul %s, want %s", c.hash, got, c.kul)
		}
	}
	// A password shorter than a 64-byte chunk, and one longer, wrap
	// around the same way.
	if bytes.Equal(passwordToKey(crypto.SHA1, []byte("12345678")), passwordToKey(crypto.SHA1, []byte("123456781"))) {
		t.Error("different passwords, same key")
	}

	// Privacy keys: AES-128 takes the first 16 bytes of the localised key
	// (RFC 3826 §1.2, A.3.2's "6695febc…1284"); AES-256 with SHA-1
	// appends SHA-1 of the 20-byte key (Blumenthal).
	sha := authProtocols["sha"]
	if got := hex.EncodeToString(localizedPrivKey(sha, privProtocols["aes"], []byte("maplesyrup"), engine)); got != "6695febc9288e36282235fc7151f1284" {
		t.Errorf("AES-128 key %s", got)
	}
	kul := unhex(t, "6695febc9288e36282235fc7151f128497b38f3f")
	ext := crypto.SHA1.New()
	ext.Write(kul)
	want := append(kul, ext.Sum(nil)...)[:32]
	if got := localizedPrivKey(sha, privProtocols["aes256"], []byte("maplesyrup"), engine); !bytes.Equal(got, want) {
		t.Errorf("AES-256 key %x, want %x", got, want)
	}
	md5 := authProtocols["md5"]
	if got := localizedPrivKey(md5, privProtocols["des"], []byte("maplesyrup"), engine); hex.EncodeToString(got) != "526f5eed9fcce26f8964c2930787d82b" {
		t.Errorf("DES key %x", got)
	}
}

// NIST SP 800-38A F.3.14 (CFB128-AES128.Decrypt).
func TestCFBDecrypt(t *testing.T) {
	block, err := aes.NewCipher(unhex(t, "2b7e151628aed2a6abf7158809cf4f3c"))
	if err != nil {
		t.Fatal(err)
	}
	ct := unhex(t, "3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b26751f67a3cbb140b1808cf187a4f4dfc04b05357c5d1c0eeac4c66f9ff7f2e6")
	want := "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
	// Whole, and cut short inside a block (SNMP PDUs are not padded).
	for _, n := range []int{len(ct), 37} {
		out := make([]byte, n)
		cfbDecrypt(block, unhex(t, "000102030405060708090a0b0c0d0e0f"), out, ct[:n])
		if got := hex.EncodeToString(out); got != want[:2*n] {
			t.Errorf("%d bytes: %s\nwant %s", n, got, want[:2*n])
		}
	}
}

// RFC 2202's HMAC-SHA-1 case 2 and RFC 4231's HMAC-SHA-256 case 2,
// truncated to the USM MAC lengths.
func TestMAC(t *testing.T) {
	msg := []byte("what do ya want for nothing?")
	if got := hex.EncodeToString(authProtocols["sha"].mac([]byte("Jefe"), msg)); got != "effcdf6ae5eb2fa2d27416d5" {
		t.Errorf("HMAC-SHA-96 %s", got)
	}
	if got := hex.EncodeToString(authProtocols["sha256"].mac([]byte("Jefe"), msg)); got != "5bdcc146bf60754e6a042426089575c75a003f089d273983" {
		t.Errorf("HMAC-SHA-256-192 %s", got)
	}
	for name, p := range authProtocols {
		if n := len(p.mac([]byte("k"), msg)); n != p.macLen || n > p.hash.Size() {
			t.Errorf("%s: %d-byte MAC", name, n)
		}
	}
}
