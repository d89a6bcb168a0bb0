package socketio

import "strconv"

// Message is a complete Socket.IO packet as a Decoder returns it: the packet and, for a
// BinaryEvent or BinaryAck, its attachments in order. The Message owns its memory: Data and
// every attachment are copies, not views of the buffers passed to Decoder.Add.
//
// Type keeps the wire type (BinaryEvent stays BinaryEvent, even when it announces no
// attachment); EventArgs and AckArgs read both forms.
type Message struct {
	Packet
	// Binary holds the attachments of a binary packet, len(Binary) == Attachments; nil for
	// the other types.
	Binary [][]byte
}

// Decoder turns the Engine.IO messages of one connection into Socket.IO messages: a text
// message is a packet; a binary packet is followed by as many binary messages as it
// announces, which the Decoder collects until the packet is complete.
//
// A Decoder belongs to one connection and is not safe for concurrent use. The zero value is
// ready to use with the default limits.
type Decoder struct {
	// MaxAttachments is the number of attachments a packet may announce; a packet that
	// announces more is refused before any attachment is read. 0 means
	// DefaultMaxAttachments (10, as in the official parser).
	MaxAttachments int
	// MaxAttachmentBytes bounds the total size of one packet's attachments; 0 means no bound
	// besides the transport's limit on each message (Engine.IO's maxPayload).
	MaxAttachmentBytes int64

	pending *Message // a binary packet waiting for attachments
	size    int64    // bytes of pending's attachments so far
}

// Add takes the next Engine.IO message of the connection; binary tells whether it is a
// binary message. It returns the Message it completes, or nil when the message starts or
// continues a binary packet that still awaits attachments. Add copies what it keeps: data
// may be reused once Add returns.
//
// A text message is parsed with ParsePacket (limited by MaxAttachments). The error, a
// *PacketError matching ErrInvalidPacket, comes from that parse, or from a binary message
// when no attachment is awaited, a text message while attachments are awaited, or
// attachments over MaxAttachmentBytes (which also matches ErrAttachmentLimit). After an
// error the Decoder drops the packet it was building and starts afresh; the protocol
// expects the connection to be closed.
//
// A packet announcing attachments costs memory only as they arrive, never in advance.
func (d *Decoder) Add(data []byte, binary bool) (*Message, error) {
	if binary {
		m := d.pending
		if m == nil {
			return nil, &PacketError{Offset: -1, Reason: "binary message when no attachment is awaited"}
		}
		d.size += int64(len(data))
		if d.MaxAttachmentBytes > 0 && d.size > d.MaxAttachmentBytes {
			d.Reset()
			return nil, &PacketError{Offset: -1, Reason: "attachments exceed " + strconv.FormatInt(d.MaxAttachmentBytes, 10) + " bytes", Err: ErrAttachmentLimit}
		}
		m.Binary = append(m.Binary, append(make([]byte, 0, len(data)), data...))
		if len(m.Binary) < m.Attachments {
			return nil, nil
		}
		d.Reset()
		return m, nil
	}
	if m := d.pending; m != nil {
		got, want := len(m.Binary), m.Attachments
		d.Reset()
		return nil, &PacketError{Offset: -1, Reason: "text message after " + strconv.Itoa(got) + " of " + strconv.Itoa(want) + " attachments"}
	}
	p, err := ParsePacket(data, d.MaxAttachments)
	if err != nil {
		return nil, err
	}
	if len(p.Data) > 0 {
		// Copy only the payload: the namespace is already a string of its own.
		p.Data = append([]byte(nil), p.Data...)
	}
	m := &Message{Packet: p}
	if p.Attachments > 0 {
		// Room for the usual few attachments; a large announced count grows as data comes.
		m.Binary = make([][]byte, 0, min(p.Attachments, 16))
		d.pending = m
		return nil, nil
	}
	return m, nil
}

// Reset drops a partly received binary packet, if any, so the next message must be a
// packet's text.
func (d *Decoder) Reset() {
	d.pending = nil
	d.size = 0
}
