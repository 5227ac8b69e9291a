package pipeline

import (
	"errors"
	"fmt"
)

// InputError is bad usage, config or reference data: nothing ran, exit 2. Line and Column are
// 1-based; zero means unknown.
type InputError struct {
	File   string
	Line   int
	Column int
	Err    error
}

func (e *InputError) Error() string {
	switch {
	case e.File == "":
		return e.Err.Error()
	case e.Line == 0:
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	case e.Column == 0:
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d:%d: %v", e.File, e.Line, e.Column, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

// Inputf builds an InputError for file:line:column.
func Inputf(file string, line, col int, format string, args ...any) error {
	return &InputError{File: file, Line: line, Column: col, Err: fmt.Errorf(format, args...)}
}

// IsInputError reports whether err is (or wraps) bad input.
func IsInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}
