package ws

import (
	"errors"
	"fmt"
	"strings"
)

// extension is one entry of a Sec-WebSocket-Extensions list (RFC 6455 §9.1): a name and its
// parameters, in order. A parameter without a value has hasValue false.
type extension struct {
	name   string
	params []extensionParam
}

type extensionParam struct {
	name, value string
	hasValue    bool
}

// parseExtensions parses the values of every Sec-WebSocket-Extensions header line:
//
//	extension-list = 1#( token *( ";" param ) )
//	param          = token [ "=" ( token | quoted-string ) ]
//
// Empty list elements are skipped, as HTTP lists allow.
func parseExtensions(values []string) ([]extension, error) {
	var out []extension
	for _, v := range values {
		p := extensionParser{s: v}
		for {
			p.skipSpace()
			if p.done() {
				break
			}
			if p.peek() == ',' {
				p.i++
				continue
			}
			ext, err := p.extension()
			if err != nil {
				return nil, fmt.Errorf("Sec-WebSocket-Extensions: %w", err)
			}
			out = append(out, ext)
			p.skipSpace()
			if !p.done() {
				if p.peek() != ',' {
					return nil, fmt.Errorf("Sec-WebSocket-Extensions: unexpected %q at %d", p.peek(), p.i)
				}
				p.i++
			}
		}
	}
	return out, nil
}

type extensionParser struct {
	s string
	i int
}

func (p *extensionParser) done() bool { return p.i >= len(p.s) }
func (p *extensionParser) peek() byte { return p.s[p.i] }

func (p *extensionParser) skipSpace() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

func (p *extensionParser) extension() (extension, error) {
	name, err := p.token()
	if err != nil {
		return extension{}, err
	}
	ext := extension{name: name}
	for {
		p.skipSpace()
		if p.done() || p.peek() != ';' {
			return ext, nil
		}
		p.i++
		p.skipSpace()
		pname, err := p.token()
		if err != nil {
			return extension{}, err
		}
		param := extensionParam{name: pname}
		p.skipSpace()
		if !p.done() && p.peek() == '=' {
			p.i++
			p.skipSpace()
			param.hasValue = true
			if !p.done() && p.peek() == '"' {
				param.value, err = p.quoted()
			} else {
				param.value, err = p.token()
			}
			if err != nil {
				return extension{}, err
			}
		}
		ext.params = append(ext.params, param)
	}
}

func (p *extensionParser) token() (string, error) {
	start := p.i
	for !p.done() && isTokenChar(p.peek()) {
		p.i++
	}
	if p.i == start {
		if p.done() {
			return "", errors.New("token expected at end of value")
		}
		return "", fmt.Errorf("token expected at %d, found %q", p.i, p.peek())
	}
	return p.s[start:p.i], nil
}

// quoted reads a quoted-string (RFC 7230 §3.2.6) and returns its content.
func (p *extensionParser) quoted() (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.done() {
		c := p.peek()
		p.i++
		switch {
		case c == '"':
			return b.String(), nil
		case c == '\\':
			if p.done() {
				return "", errors.New("unterminated quoted string")
			}
			b.WriteByte(p.peek())
			p.i++
		case c < 0x20 && c != '\t' || c == 0x7f:
			return "", fmt.Errorf("control character in quoted string at %d", p.i-1)
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated quoted string")
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 7230 §3.2.6).
func isTokenChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	return !strings.ContainsRune(`()<>@,;:\"/[]?={}`, rune(c))
}
