// Package wire is the protocol between a client and a relay, carried in
// WebSocket binary frames, one message a frame, encoded in msgpack.
//
// # Session
//
//  1. The relay sends Hello with its protocol version, its host name and a
//     random challenge.
//  2. The client sends Auth: its device's Ed25519 public key and a signature
//     over the challenge and the relay's host name (AuthMessage), so a proof
//     made for one relay cannot be replayed against another. The relay
//     answers Welcome, or Error and closes.
//  3. The client then sends requests, each with a Ref of its choosing that
//     the relay echoes in the reply (OK, Ack, Docs or Error):
//     Claim proves that the connection holds the keys it uses as a
//     member of some documents (see Document keys below);
//     AppendEntry appends a signed entry to a document's membership log
//     (package sync/membership), the first of which creates the document,
//     and the relay answers EntryAck with its countersignature; GetLog
//     returns a document's membership log, to a former member up to the
//     entry that removed it; ListDocs returns a page of the
//     documents the device or its claimed keys are members of, with
//     their sealed keys;
//     Subscribe requests every envelope and membership entry of a
//     document after a cursor, then live ones; Push stores one envelope;
//     PostInvite and TakeInvite carry an invitation's response from the
//     invitee to the inviter; PutChain and GetChain store and fetch a
//     person's sigchain.
//  4. For a subscription the relay sends Deliver for each stored envelope
//     in cursor order, and for each membership entry before the envelopes
//     stored after it, then CaughtUp once the backlog is sent, then Deliver for
//     each new envelope as it is stored.
//
// A cursor is the relay's position in a document's log: it starts at 1 and
// grows by one for each stored envelope. The relay acknowledges a push
// (Ack with its cursor) only after the envelope is durably stored.
//
// # Push checks
//
// Before it stores a pushed envelope, the relay checks, without any
// document key: that the envelope decodes in canonical form, that it names
// the pushed document, that the connection's device or a key it claimed
// for the document wrote and signed it, that the author is a writer or admin in the membership log, that the
// envelope's membership head is an entry of the log and its key epoch the
// epoch of that entry (else CodeBadEpoch), that its sequence number
// is the author's last stored one plus one (else CodeBadSequence) and that
// its Prev is the hash of the author's last stored envelope (else
// CodeBadChain). A push of an envelope the relay already stores, byte for
// byte, gets the Ack of the first copy, so a client can retry after a lost
// Ack. Clients check the same chain on delivery, because a relay that
// skips these checks, or forges around them, must not go unnoticed.
//
// # Document keys
//
// A device may be a member of each document under a key of its own for
// that document, derived from its secret keys. The keys the relay stores
// for documents then do not show that one device is in several of them.
// The device authenticates the connection with its device key, then sends
// Claim with one signature per document key over ClaimMessage (the relay's
// host name, the connection's challenge and the document id). The relay
// serves a document to the connection if the device key or a key claimed
// for that document is a member of it, and takes pushes and membership
// entries whose author is one of them. Claims last for the connection.
//
// # Versions
//
// A relay refuses a client whose Auth carries another version than its
// own with CodeUnsupportedVersion, and a client refuses a relay whose
// Hello does.
//
// Version 6 adds PutChain, GetChain and Chain: the relay keeps each
// person's sigchain and the seeds sealed to their devices.
//
// Version 5 adds Claim and document keys. Invitation links carry the
// document's id, so an invitee joins under its key for that document.
// The relay also sends Shared when an invitation a connection waits on
// gets its response, and replies to GetLog from a former member with the
// log up to its removal, so its client can tell a removal from a lost
// document.
//
// Version 4 pages the document list: ListDocs carries After and Limit,
// and Docs carries More. A message is a msgpack array whose length the
// decoder checks against the message's fields, so a version 3 peer
// rejects these two messages as malformed. The relay also sends Shared,
// unasked, to a device's open connections when a membership entry adds
// the device to a document, so the client lists its documents again at
// once instead of on its next timed relist.
//
// Version 3 replaces Create and AddMember (types 6 and 7, retired) with
// the signed membership log: AppendEntry, EntryAck, GetLog and Log. Hello
// carries the relay's countersigning key, Subscribe the first membership
// entry to send (EntriesFrom), Deliver membership entries too, and
// PostInvite, TakeInvite and Invite route invitation responses. New codes: CodeForbidden, CodeBadEntry, CodeStaleLog,
// CodeBadEpoch and CodeInvitationUsed.
//
// Version 2 carries envelopes of format 2 (package sync/envelope): key
// epoch, membership head, hash of the author's previous envelope, the
// author's view of the other authors' sequence numbers, a key commitment
// and padded content. The relay checks the hash chain of each author and
// rejects a broken one with the new code CodeBadChain. Messages are
// unchanged.
//
// Version 1 was the first version of this protocol.
package wire

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"interlude/internal/mpcheck"
)

// Version is the protocol version this package speaks. The package doc
// lists what each version changed.
const Version = 6

// MaxFrame is the largest frame either side accepts, in bytes. It leaves
// room above the largest envelope for the message's own fields.
const MaxFrame = 4<<20 + 64<<10

// ChallengeSize is the size in bytes of the relay's authentication challenge.
const ChallengeSize = 32

// Type identifies a message on the wire.
type Type uint8

// Message types. Values are part of the protocol: never renumber them.
const (
	TypeHello   Type = 1
	TypeAuth    Type = 2
	TypeWelcome Type = 3
	TypeError   Type = 4
	TypeOK      Type = 5
	// Types 6 (Create) and 7 (AddMember) were retired in version 3.
	TypeListDocs  Type = 8
	TypeDocs      Type = 9
	TypeSubscribe Type = 10
	TypePush      Type = 11
	TypeAck       Type = 12
	TypeDeliver   Type = 13
	TypeCaughtUp  Type = 14

	TypeAppendEntry Type = 15
	TypeEntryAck    Type = 16
	TypeGetLog      Type = 17
	TypeLog         Type = 18
	TypePostInvite  Type = 19
	TypeTakeInvite  Type = 20
	TypeInvite      Type = 21
	TypeShared      Type = 22
	TypeClaim       Type = 23
	TypePutChain    Type = 24
	TypeGetChain    Type = 25
	TypeChain       Type = 26
)

// Message is implemented by every message type.
type Message interface {
	Type() Type
}

// Hello is the relay's first message on a connection.
type Hello struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Version   int
	Relay     string // host name the relay serves under; signed in Auth
	Challenge []byte
	// RelayKey is the Ed25519 public key that countersigns membership
	// entries.
	RelayKey []byte
}

// Auth proves the client holds the device key it names.
type Auth struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Version   int
	Device    []byte // Ed25519 public key
	Signature []byte // over AuthMessage(Relay, Challenge)
}

// Welcome confirms to the client that it is authenticated.
type Welcome struct {
	_msgpack struct{} `msgpack:",as_array"`
	Version  int
}

// Error reports a failed request (Ref set) or a failed connection (Ref 0).
type Error struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
	Code     Code
	Message  string
}

// OK is the reply to a request that returns nothing else.
type OK struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
}

// MaxClaims is the largest number of document keys one Claim carries.
// A client with more documents sends several.
const MaxClaims = 4096

// Claim proves that the connection holds the private key of each
// DocClaim's Key, so the relay treats Key as this connection's in
// Doc. The reply is OK, or Error naming the first claim that fails, in
// which case the relay keeps none of the message's claims.
type Claim struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
	Claims   []DocClaim
}

// DocClaim is one document key of a Claim.
type DocClaim struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Doc       []byte
	Key       []byte // Ed25519 public key
	Signature []byte // over ClaimMessage(Relay, Challenge, Doc)
}

// AppendEntry requests that the relay append one encoded membership entry to
// Doc's log. An entry with index 0 creates the document. Appending an
// entry the log already holds, byte for byte, returns its EntryAck again,
// so a client can retry after a lost reply.
type AppendEntry struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
	Doc      []byte
	Entry    []byte
}

// EntryAck confirms that an entry is stored at Index, with the relay's
// countersignature over the document, the index and the entry's hash.
type EntryAck struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Ref        uint64
	Doc        []byte
	Index      uint64
	Countersig []byte
}

// GetLog requests the entries of Doc's membership log from index From. A
// device removed from Doc gets the entries up to the one that removed it.
type GetLog struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
	Doc      []byte
	From     uint64
}

// LogEntry is one countersigned membership entry.
type LogEntry struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Entry      []byte
	Countersig []byte
}

// Log is the reply to GetLog. More is set when the entries stop before the end of
// the log to keep the frame small: ask again from the next index.
type Log struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
	Doc      []byte
	Entries  []LogEntry
	More     bool
}

// PostInvite stores an invitee's response to the invitation with id ID,
// for the inviter to take. The inviter must have opened the invitation
// with TakeInvite first, else the reply is CodeNotFound. An invitation
// takes one response: a second, different one gets CodeInvitationUsed.
type PostInvite struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
	ID       []byte
	Response []byte
}

// TakeInvite opens the invitation with id ID on the relay, if it is not
// open yet, and requests its response.
type TakeInvite struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
	ID       []byte
}

// Invite is the reply to TakeInvite. Response is empty until an invitee
// posts one.
type Invite struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
	ID       []byte
	Response []byte
}

// ListDocs requests a page of the documents the device is a member of, in
// document id order. After is empty to start at the first document, or a
// 16-byte document id to list only documents with greater ids. Limit is
// the maximum number of grants in the reply, or 0 for the relay's own
// maximum, which also caps a larger Limit.
type ListDocs struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
	After    []byte
	Limit    uint64
}

// Grant is one document a device is a member of.
type Grant struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Doc       []byte
	SealedKey []byte
	AddedBy   []byte // Ed25519 public key of the member that added this device
}

// Docs is the reply to ListDocs, with grants in document id order. More is
// set when the relay stopped at the request's limit or its own maximum:
// ask again with After set to the last grant's document.
type Docs struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
	Grants   []Grant
	More     bool
}

// Subscribe requests the envelopes of Doc after cursor After and the
// membership entries from index EntriesFrom, then new ones as they
// arrive. Envelopes the device wrote itself are skipped unless IncludeOwn
// is set, which a device sets when it has lost its local copy.
type Subscribe struct {
	_msgpack    struct{} `msgpack:",as_array"`
	Ref         uint64
	Doc         []byte
	After       uint64
	IncludeOwn  bool
	EntriesFrom uint64
}

// Push requests that the relay store one envelope.
type Push struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
	Doc      []byte
	Envelope []byte
}

// Ack confirms that a pushed envelope is durably stored at Cursor.
type Ack struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
	Doc      []byte
	Cursor   uint64
}

// Deliver carries one stored envelope, or one membership entry, of a
// subscribed document. For an entry, Envelope is empty, Entry and
// Countersig are set, and Cursor is the last envelope cursor stored
// before the entry, which the client has already received.
type Deliver struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Doc        []byte
	Cursor     uint64
	Envelope   []byte
	Entry      []byte
	Countersig []byte
}

// Shared notifies a device, unasked, that a membership entry added it, or
// a key it claimed, to a document, so ListDocs now lists more, or that an
// invitee responded to an invitation the connection opened with
// TakeInvite and found unanswered. It carries nothing, so a relay reveals
// nothing new by sending it.
type Shared struct {
	_msgpack struct{} `msgpack:",as_array"`
}

// PutChain appends Entries to the sigchain with id ID, a person's list
// of devices, which the relay keeps for the person's devices and for
// anyone who shares with the person, but does not read. The relay
// appends only if it contains exactly From entries of the chain. Else it
// replies CodeStaleLog, and the client fetches the chain with GetChain
// and builds its entry again. A new chain's ID must be the hash of its
// first entry, as package client/keyring computes it, else the reply is
// CodeForbidden. Blobs, the person's secret seeds sealed to
// each device, are appended to the chain's blobs. Writers lists the
// Ed25519 device keys that may append next. The connection's device must
// be among the writers stored before, or, to start a chain (From 0),
// among Writers. The reply is OK.
type PutChain struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
	ID       []byte
	From     uint64
	Entries  [][]byte
	Blobs    [][]byte
	Writers  [][]byte
}

// GetChain requests the entries of the sigchain with id ID after the
// first From, and its blobs after the first BlobsFrom.
type GetChain struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Ref       uint64
	ID        []byte
	From      uint64
	BlobsFrom uint64
}

// Chain is the reply to GetChain. Both lists are empty when the relay
// holds no such chain, or nothing after the positions asked for.
type Chain struct {
	_msgpack struct{} `msgpack:",as_array"`
	Ref      uint64
	ID       []byte
	Entries  [][]byte
	Blobs    [][]byte
}

// CaughtUp reports that the backlog of a subscription has been sent up to Cursor.
type CaughtUp struct {
	_msgpack struct{} `msgpack:",as_array"`
	Doc      []byte
	Cursor   uint64
}

func (*Hello) Type() Type       { return TypeHello }
func (*Auth) Type() Type        { return TypeAuth }
func (*Welcome) Type() Type     { return TypeWelcome }
func (*Error) Type() Type       { return TypeError }
func (*OK) Type() Type          { return TypeOK }
func (*ListDocs) Type() Type    { return TypeListDocs }
func (*Docs) Type() Type        { return TypeDocs }
func (*Subscribe) Type() Type   { return TypeSubscribe }
func (*Push) Type() Type        { return TypePush }
func (*Ack) Type() Type         { return TypeAck }
func (*Deliver) Type() Type     { return TypeDeliver }
func (*CaughtUp) Type() Type    { return TypeCaughtUp }
func (*AppendEntry) Type() Type { return TypeAppendEntry }
func (*EntryAck) Type() Type    { return TypeEntryAck }
func (*GetLog) Type() Type      { return TypeGetLog }
func (*Log) Type() Type         { return TypeLog }
func (*PostInvite) Type() Type  { return TypePostInvite }
func (*TakeInvite) Type() Type  { return TypeTakeInvite }
func (*Invite) Type() Type      { return TypeInvite }
func (*Shared) Type() Type      { return TypeShared }
func (*Claim) Type() Type       { return TypeClaim }
func (*PutChain) Type() Type    { return TypePutChain }
func (*GetChain) Type() Type    { return TypeGetChain }
func (*Chain) Type() Type       { return TypeChain }

// Error implements the error interface so a client can return a relay's
// Error message as it is.
func (e *Error) Error() string {
	return fmt.Sprintf("relay: %s: %s", e.Code, e.Message)
}

// ErrMalformed is returned by Decode for a frame that is not a message.
var ErrMalformed = errors.New("wire: malformed frame")

// Encode returns the frame for m: a msgpack array of the type and the
// message's own array.
func Encode(m Message) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	if err := enc.EncodeArrayLen(2); err != nil {
		return nil, err
	}
	if err := enc.EncodeUint8(uint8(m.Type())); err != nil {
		return nil, err
	}
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("wire: encode message type %d: %w", m.Type(), err)
	}
	if buf.Len() > MaxFrame {
		return nil, fmt.Errorf("wire: frame of %d bytes is larger than the limit of %d", buf.Len(), MaxFrame)
	}
	return buf.Bytes(), nil
}

// frameLimits bounds a frame's structure. A Docs reply, with four
// elements per grant and five more, is the widest message, so one Docs
// frame carries at most 16382 grants.
var frameLimits = mpcheck.Limits{MaxDepth: 4, MaxElements: 1 << 16}

// Decode parses one frame.
func Decode(frame []byte) (Message, error) {
	if len(frame) > MaxFrame {
		return nil, fmt.Errorf("%w: %d bytes, larger than the limit of %d", ErrMalformed, len(frame), MaxFrame)
	}
	// The check bounds what the decoder may allocate by the frame's size.
	if err := mpcheck.Check(frame, frameLimits); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(frame))
	n, err := dec.DecodeArrayLen()
	if err != nil || n != 2 {
		return nil, fmt.Errorf("%w: want an array of type and body", ErrMalformed)
	}
	t, err := dec.DecodeUint8()
	if err != nil {
		return nil, fmt.Errorf("%w: type: %v", ErrMalformed, err)
	}
	m := newMessage(Type(t))
	if m == nil {
		return nil, fmt.Errorf("%w: unknown message type %d", ErrMalformed, t)
	}
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("%w: message type %d: %v", ErrMalformed, t, err)
	}
	return m, nil
}

func newMessage(t Type) Message {
	switch t {
	case TypeHello:
		return &Hello{}
	case TypeAuth:
		return &Auth{}
	case TypeWelcome:
		return &Welcome{}
	case TypeError:
		return &Error{}
	case TypeOK:
		return &OK{}
	case TypeListDocs:
		return &ListDocs{}
	case TypeDocs:
		return &Docs{}
	case TypeSubscribe:
		return &Subscribe{}
	case TypePush:
		return &Push{}
	case TypeAck:
		return &Ack{}
	case TypeDeliver:
		return &Deliver{}
	case TypeCaughtUp:
		return &CaughtUp{}
	case TypeAppendEntry:
		return &AppendEntry{}
	case TypeEntryAck:
		return &EntryAck{}
	case TypeGetLog:
		return &GetLog{}
	case TypeLog:
		return &Log{}
	case TypePostInvite:
		return &PostInvite{}
	case TypeTakeInvite:
		return &TakeInvite{}
	case TypeInvite:
		return &Invite{}
	case TypeShared:
		return &Shared{}
	case TypeClaim:
		return &Claim{}
	case TypePutChain:
		return &PutChain{}
	case TypeGetChain:
		return &GetChain{}
	case TypeChain:
		return &Chain{}
	}
	return nil
}

const (
	authDomain  = "interlude/auth/v1\x00"
	claimDomain = "interlude/claim/v1\x00"
)

// AuthMessage returns the bytes a device signs to authenticate: a domain
// prefix, the relay's host name and the challenge.
func AuthMessage(relay string, challenge []byte) []byte {
	b := make([]byte, 0, len(authDomain)+len(relay)+1+len(challenge))
	b = append(b, authDomain...)
	b = append(b, relay...)
	b = append(b, 0)
	return append(b, challenge...)
}

// ClaimMessage returns the bytes a document key signs to be claimed on a
// connection: a domain prefix, the relay's host name, the connection's
// challenge and the document id. The challenge ties the proof to one
// connection, the document id to one document.
func ClaimMessage(relay string, challenge, doc []byte) []byte {
	b := make([]byte, 0, len(claimDomain)+len(relay)+1+len(challenge)+len(doc))
	b = append(b, claimDomain...)
	b = append(b, relay...)
	b = append(b, 0)
	b = append(b, challenge...)
	return append(b, doc...)
}

// VerifyClaim checks one DocClaim against the connection's challenge.
func VerifyClaim(c *DocClaim, relay string, challenge []byte) error {
	if len(c.Doc) != 16 {
		return fmt.Errorf("claimed document id of %d bytes, want 16", len(c.Doc))
	}
	if len(c.Key) != ed25519.PublicKeySize {
		return fmt.Errorf("claimed key of %d bytes, want %d", len(c.Key), ed25519.PublicKeySize)
	}
	if !ed25519.Verify(c.Key, ClaimMessage(relay, challenge, c.Doc), c.Signature) {
		return fmt.Errorf("signature of the claim for document %x does not verify for key %x", c.Doc, c.Key[:8])
	}
	return nil
}

// VerifyAuth checks an Auth message against the challenge the relay sent.
func VerifyAuth(a *Auth, relay string, challenge []byte) error {
	if len(a.Device) != ed25519.PublicKeySize {
		return fmt.Errorf("device key of %d bytes, want %d", len(a.Device), ed25519.PublicKeySize)
	}
	if !ed25519.Verify(a.Device, AuthMessage(relay, challenge), a.Signature) {
		return errors.New("signature over the challenge does not verify for this device key")
	}
	return nil
}
