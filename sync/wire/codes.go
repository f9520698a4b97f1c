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
	// CodeDocExists: no longer sent since version 3, where creating a
	// document that exists gets CodeStaleLog.
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
	// CodeForbidden: the device is a member but its role does not allow
	// the request, such as a writer adding members or a reader pushing.
	CodeForbidden Code = "forbidden"
	// CodeBadEntry: a membership entry is malformed, not signed by its
	// author, or breaks a rule of the log.
	CodeBadEntry Code = "bad_entry"
	// CodeStaleLog: a membership entry does not follow the log's head:
	// fetch the log with GetLog and rebuild the entry on top of it.
	CodeStaleLog Code = "stale_log"
	// CodeBadEpoch: a pushed envelope names a membership head the log
	// does not hold, or a key epoch other than that head's.
	CodeBadEpoch Code = "bad_epoch"
	// CodeInvitationUsed: another response to the invitation is stored.
	CodeInvitationUsed Code = "invitation_used"
	// CodeTooLarge: the frame is larger than MaxFrame.
	CodeTooLarge Code = "too_large"
	// CodeInternal: the relay failed; the request may be retried.
	CodeInternal Code = "internal"
)
