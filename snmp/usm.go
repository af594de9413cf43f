package snmp

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	_ "crypto/md5" // crypto.MD5 for usmHMACMD5AuthProtocol
	"crypto/rand"
	_ "crypto/sha1"   // crypto.SHA1 for usmHMACSHAAuthProtocol
	_ "crypto/sha256" // crypto.SHA224, SHA256 (RFC 7860)
	_ "crypto/sha512" // crypto.SHA384, SHA512 (RFC 7860)
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gosnmp/gosnmp"

	"github.com/tcptap/tcptap/config"
)

// The User-based Security Model of SNMPv3 (RFC 3414), with the SHA-2
// authentication protocols of RFC 7860 and the AES privacy protocol of RFC
// 3826 (AES-192/256 with the key extension of draft-blumenthal-aes-usm-04,
// as net-snmp's AES-192 and AES-256). Incoming messages are verified and
// decrypted here; responses and notifications are authenticated and
// encrypted by gosnmp's encoder from the keys localised here.

// Security levels, as the low bits of msgFlags.
const (
	levelNoAuth   = gosnmp.NoAuthNoPriv
	levelAuth     = gosnmp.AuthNoPriv
	levelAuthPriv = gosnmp.AuthPriv
	flagsLevel    = gosnmp.AuthPriv // the msgFlags bits of the level
)

func levelName(l gosnmp.SnmpV3MsgFlags) string {
	switch l & flagsLevel {
	case levelAuth:
		return "authNoPriv"
	case levelAuthPriv:
		return "authPriv"
	default:
		return "noAuthNoPriv"
	}
}

// authProtocol is a USM authentication protocol: HMAC with hash, the MAC
// truncated to macLen bytes.
type authProtocol struct {
	hash   crypto.Hash
	macLen int
	id     gosnmp.SnmpV3AuthProtocol
}

// authProtocols are by their snmp.users auth_protocol names.
var authProtocols = map[string]*authProtocol{
	"md5":    {crypto.MD5, 12, gosnmp.MD5},       // RFC 3414 §6
	"sha":    {crypto.SHA1, 12, gosnmp.SHA},      // RFC 3414 §7
	"sha224": {crypto.SHA224, 16, gosnmp.SHA224}, // RFC 7860 §4.2
	"sha256": {crypto.SHA256, 24, gosnmp.SHA256},
	"sha384": {crypto.SHA384, 32, gosnmp.SHA384},
	"sha512": {crypto.SHA512, 48, gosnmp.SHA512},
}

// privProtocol is a USM privacy protocol with keys of keyLen bytes (DES:
// 8 of key, then 8 of pre-IV).
type privProtocol struct {
	des    bool
	keyLen int
	id     gosnmp.SnmpV3PrivProtocol
}

// privProtocols are by their snmp.users priv_protocol names.
var privProtocols = map[string]*privProtocol{
	"des":    {true, 16, gosnmp.DES},     // RFC 3414 §8
	"aes":    {false, 16, gosnmp.AES},    // RFC 3826
	"aes192": {false, 24, gosnmp.AES192}, // draft-blumenthal-aes-usm-04
	"aes256": {false, 32, gosnmp.AES256},
}

// passwordToKey is RFC 3414 A.2: the digest of the password repeated to
// fill 1 MiB.
func passwordToKey(h crypto.Hash, password []byte) []byte {
	d := h.New()
	var chunk [64]byte
	j := 0
	for n := 0; n < 1<<20; n += len(chunk) {
		for i := range chunk {
			chunk[i] = password[j]
			j++
			if j == len(password) {
				j = 0
			}
		}
		d.Write(chunk[:])
	}
	return d.Sum(nil)
}

// localizeKey is RFC 3414 §2.6: the key of a user at one engine,
// H(Ku || engineID || Ku).
func localizeKey(h crypto.Hash, ku, engineID []byte) []byte {
	d := h.New()
	d.Write(ku)
	d.Write(engineID)
	d.Write(ku)
	return d.Sum(nil)
}

// localizedPrivKey returns the privacy key of password at engineID: the
// localised key (hashed with the authentication protocol), extended while
// shorter than the cipher needs by appending the digest of the whole key
// so far (draft-blumenthal-aes-usm-04 §3.1.2.1, as net-snmp does).
func localizedPrivKey(auth *authProtocol, priv *privProtocol, password, engineID []byte) []byte {
	k := localizeKey(auth.hash, passwordToKey(auth.hash, password), engineID)
	for len(k) < priv.keyLen {
		d := auth.hash.New()
		d.Write(k)
		k = d.Sum(k)
	}
	return k[:priv.keyLen]
}

// mac is the truncated HMAC of msg (whose msgAuthenticationParameters are
// zeros).
func (a *authProtocol) mac(key, msg []byte) []byte {
	m := hmac.New(a.hash.New, key)
	m.Write(msg)
	return m.Sum(nil)[:a.macLen]
}

var errDecrypt = errors.New("cannot decrypt")

// decrypt returns the plaintext scoped PDU of an encryptedPDU. AES is CFB
// with 128-bit segments and IV = boots, time, salt (RFC 3826 §3.1.2.1);
// DES is CBC with IV = pre-IV XOR salt (RFC 3414 §8.1.1.1).
func (p *privProtocol) decrypt(key []byte, boots, engineTime uint32, salt, data []byte) ([]byte, error) {
	if len(salt) != 8 {
		return nil, fmt.Errorf("%w: msgPrivacyParameters of %d bytes, want 8", errDecrypt, len(salt))
	}
	if p.des {
		if len(data) == 0 || len(data)%des.BlockSize != 0 {
			return nil, fmt.Errorf("%w: DES ciphertext of %d bytes", errDecrypt, len(data))
		}
		block, err := des.NewCipher(key[:8])
		if err != nil {
			return nil, err
		}
		iv := make([]byte, 8)
		subtle.XORBytes(iv, key[8:16], salt)
		out := make([]byte, len(data))
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
		return out, nil
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	var iv [aes.BlockSize]byte
	binary.BigEndian.PutUint32(iv[0:], boots)
	binary.BigEndian.PutUint32(iv[4:], engineTime)
	copy(iv[8:], salt)
	out := make([]byte, len(data))
	cfbDecrypt(block, iv[:], out, data)
	return out, nil
}

// cfbDecrypt is CFB-128 decryption (NIST SP 800-38A §6.3): each
// ciphertext block, encrypted, is the key stream of the next.
func cfbDecrypt(block cipher.Block, iv, dst, src []byte) {
	var feedback, stream [aes.BlockSize]byte
	copy(feedback[:], iv)
	for len(src) > 0 {
		block.Encrypt(stream[:], feedback[:])
		n := subtle.XORBytes(dst, src, stream[:])
		copy(feedback[:], src[:n])
		dst, src = dst[n:], src[n:]
	}
}

// usmUser is an snmp.users entry with its keys localised to the agent's
// engine.
type usmUser struct {
	name     string
	auth     *authProtocol // nil: noAuthNoPriv
	priv     *privProtocol // nil: no privacy
	authKey  []byte
	privKey  []byte
	authPass string // for informs, whose keys are localised to the receiver
	privPass string
	access   Community // Write and View as a community's
}

// level is the lowest security level the user's requests may have.
func (u *usmUser) level() gosnmp.SnmpV3MsgFlags {
	switch {
	case u.priv != nil:
		return levelAuthPriv
	case u.auth != nil:
		return levelAuth
	}
	return levelNoAuth
}

// USMStats are the usmStats counters (SNMP-USM-MIB, RFC 3414 §5) and
// the message processing ones (SNMP-MPD-MIB, RFC 3412 §5;
// SNMP-TARGET-MIB's snmpUnknownContexts).
type USMStats struct {
	UnsupportedSecLevels atomic.Uint64
	NotInTimeWindows     atomic.Uint64
	UnknownUserNames     atomic.Uint64
	UnknownEngineIDs     atomic.Uint64
	WrongDigests         atomic.Uint64
	DecryptionErrors     atomic.Uint64

	UnknownSecurityModels atomic.Uint64
	InvalidMsgs           atomic.Uint64
	UnknownPDUHandlers    atomic.Uint64
	UnknownContexts       atomic.Uint64
}

// USM is the agent's SNMPv3 security: its engine and users, shared by the
// agent and the notifier.
type USM struct {
	Engine *Engine
	Stats  USMStats
	users  map[string]*usmUser // replaced whole under mu (SetUsers)
	mu     sync.RWMutex
	// salts of the messages we encrypt, never repeated under one key
	// (RFC 3826 §3.1.1.1, RFC 3414 §8.1.1.1).
	aesSalt atomic.Uint64
	desSalt atomic.Uint32
	msgID   atomic.Uint32
}

// NewUSM localises the keys of cfg's users to engine (config has
// validated them).
func NewUSM(cfg config.SNMP, engine *Engine) (*USM, error) {
	views, err := parseViews(cfg)
	if err != nil {
		return nil, err
	}
	u := &USM{Engine: engine, users: map[string]*usmUser{}}
	var seed [14]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	u.aesSalt.Store(binary.BigEndian.Uint64(seed[:8]))
	u.desSalt.Store(binary.BigEndian.Uint32(seed[8:12]))
	u.msgID.Store(uint32(binary.BigEndian.Uint16(seed[12:])))
	for i, c := range cfg.Users {
		key := fmt.Sprintf("snmp.users[%d]", i)
		user := &usmUser{name: c.Name, authPass: c.AuthPassword, privPass: c.PrivPassword,
			access: Community{Name: c.Name, Write: c.Access == "rw"}}
		if c.Name == "" || len(c.Name) > 32 {
			return nil, fmt.Errorf("%s.name %q: want 1 to 32 bytes", key, c.Name)
		}
		if u.users[c.Name] != nil {
			return nil, fmt.Errorf("%s.name %q: given twice", key, c.Name)
		}
		if c.View != "" {
			if user.access.View = views[c.View]; user.access.View == nil {
				return nil, fmt.Errorf("%s.view: no view %q in snmp.views", key, c.View)
			}
		}
		if c.AuthProtocol != "" && c.AuthProtocol != "none" {
			if user.auth = authProtocols[c.AuthProtocol]; user.auth == nil {
				return nil, fmt.Errorf("%s.auth_protocol %q: unknown", key, c.AuthProtocol)
			}
			if len(c.AuthPassword) < 8 {
				return nil, fmt.Errorf("%s.auth_password: want at least 8 characters", key)
			}
			user.authKey = localizeKey(user.auth.hash, passwordToKey(user.auth.hash, []byte(c.AuthPassword)), engine.ID)
		}
		if c.PrivProtocol != "" && c.PrivProtocol != "none" {
			if user.priv = privProtocols[c.PrivProtocol]; user.priv == nil {
				return nil, fmt.Errorf("%s.priv_protocol %q: unknown", key, c.PrivProtocol)
			}
			if user.auth == nil {
				return nil, fmt.Errorf("%s.priv_protocol: privacy needs authentication", key)
			}
			if len(c.PrivPassword) < 8 {
				return nil, fmt.Errorf("%s.priv_password: want at least 8 characters", key)
			}
			user.privKey = localizedPrivKey(user.auth, user.priv, []byte(c.PrivPassword), engine.ID)
		}
		u.users[c.Name] = user
	}
	return u, nil
}

// user returns the user of a name, or nil.
func (u *USM) user(name string) *usmUser {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.users[name]
}

// SetUsers replaces the users with those of from (a USM built by NewUSM
// for the same engine), as a reload does.
func (u *USM) SetUsers(from *USM) {
	from.mu.RLock()
	users := from.users
	from.mu.RUnlock()
	u.mu.Lock()
	u.users = users
	u.mu.Unlock()
}

// securityParameters are the USM parameters of a message we send as the
// authoritative engine: our engine ID, boots and time, and for authPriv
// a fresh salt. user is nil for unauthenticated reports, which name
// userName.
func (u *USM) securityParameters(user *usmUser, userName string, level gosnmp.SnmpV3MsgFlags) *gosnmp.UsmSecurityParameters {
	sp := &gosnmp.UsmSecurityParameters{
		AuthoritativeEngineID:    string(u.Engine.ID),
		AuthoritativeEngineBoots: u.Engine.Boots,
		AuthoritativeEngineTime:  u.Engine.Time(),
		UserName:                 userName,
		AuthenticationProtocol:   gosnmp.NoAuth,
		PrivacyProtocol:          gosnmp.NoPriv,
	}
	if user == nil || level&levelAuth == 0 {
		return sp
	}
	sp.AuthenticationProtocol, sp.SecretKey = user.auth.id, user.authKey
	if level&levelAuthPriv == levelAuthPriv {
		sp.PrivacyProtocol, sp.PrivacyKey = user.priv.id, user.privKey
		salt := make([]byte, 8)
		if user.priv.des {
			binary.BigEndian.PutUint32(salt, u.Engine.Boots)
			binary.BigEndian.PutUint32(salt[4:], u.desSalt.Add(1))
		} else {
			binary.BigEndian.PutUint64(salt, u.aesSalt.Add(1))
		}
		sp.PrivacyParameters = salt
	}
	return sp
}

// packet returns an SNMPv3 message of user at level from our engine,
// with msgID, for the PDU to be filled in.
func (u *USM) packet(user *usmUser, userName string, level gosnmp.SnmpV3MsgFlags, msgID uint32) *gosnmp.SnmpPacket {
	return &gosnmp.SnmpPacket{
		Version:            gosnmp.Version3,
		MsgID:              msgID,
		MsgMaxSize:         MaxInMessageSize,
		MsgFlags:           level & flagsLevel,
		SecurityModel:      gosnmp.UserSecurityModel,
		SecurityParameters: u.securityParameters(user, userName, level),
		ContextEngineID:    string(u.Engine.ID),
	}
}

// nextMsgID returns the msgID of a message we originate (0 to 2^31−1).
func (u *USM) nextMsgID() uint32 { return u.msgID.Add(1) & 0x7fffffff }
