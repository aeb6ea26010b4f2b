package loginsharecmd

import (
	"bufio"
	"errors"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// maxLine bounds a username or password read from standard input.
const maxLine = 64 << 10

// terminal is standard input when it is a terminal.
type terminal struct{ f *os.File }

// terminalOf returns in as a terminal, or nil when it is not one.
func terminalOf(in io.Reader) *terminal {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &terminal{f}
}

// readPassword reads a line with echo off.
func (t *terminal) readPassword() (string, error) {
	b, err := term.ReadPassword(int(t.f.Fd()))
	return string(b), err
}

// readLine reads a line as typed (with echo), one byte at a time so that
// nothing after the newline is consumed before the password is read.
func (t *terminal) readLine() (string, error) {
	var b strings.Builder
	one := make([]byte, 1)
	for b.Len() < maxLine {
		n, err := t.f.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				return strings.TrimSuffix(b.String(), "\r"), nil
			}
			b.WriteByte(one[0])
		}
		if err != nil {
			if err == io.EOF && b.Len() > 0 {
				return b.String(), nil
			}
			return "", err
		}
	}
	return "", errors.New("line too long")
}

// readLine reads the first line of a non-terminal input, without its line
// ending.
func readLine(in io.Reader) (string, error) {
	r := bufio.NewReaderSize(io.LimitReader(in, maxLine+1), 4096)
	line, err := r.ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	if err == io.EOF && line == "" {
		return "", errors.New("standard input is empty: give the password as one line")
	}
	if len(line) > maxLine {
		return "", errors.New("line too long")
	}
	line = strings.TrimSuffix(line, "\n")
	return strings.TrimSuffix(line, "\r"), nil
}
