package wire

// Code classifies an Error message. The values are part of the protocol.
type Code string

// Error codes sent by the relay.
const (
	// CodeMalformed: the frame could not be decoded.
	CodeMalformed Code = "malformed"
	// CodeUnsupportedVersion: the client speaks another protocol version.
	CodeUnsupportedVersion Code = "unsupported_version"
	// CodeAuthFailed: the Auth signature did not verify.
	CodeAuthFailed Code = "auth_failed"
	// CodeNotAuthenticated: a request came before a successful Auth.
	CodeNotAuthenticated Code = "not_authenticated"
	// CodeNotMember: the device is not a member of the document.
	CodeNotMember Code = "not_member"
	// CodeDocExists: Create named a document that others already own.
	CodeDocExists Code = "doc_exists"
	// CodeNotFound: the document does not exist on this relay.
	CodeNotFound Code = "not_found"
	// CodeBadSignature: a pushed envelope's signature did not verify.
	CodeBadSignature Code = "bad_signature"
	// CodeBadEnvelope: a pushed envelope is malformed, names another
	// document, or was written by another device than the sender.
	CodeBadEnvelope Code = "bad_envelope"
	// CodeBadSequence: a pushed envelope's sequence number is not the
	// author's next one, or reuses a stored one with other bytes.
	CodeBadSequence Code = "bad_sequence"
	// CodeBadChain: a pushed envelope has the author's next sequence
	// number, but its Prev is not the hash of the author's last stored
	// envelope. The message names the expected hash.
	CodeBadChain Code = "bad_chain"
	// CodeTooLarge: the frame is larger than MaxFrame.
	CodeTooLarge Code = "too_large"
	// CodeInternal: the relay failed; the request may be retried.
	CodeInternal Code = "internal"
)
