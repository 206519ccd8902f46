package redigo

import "errors"

// Do sends one command as it is given (see redis.Doer), within the Conn's
// context. Bulk strings come back as []byte, as redigo decodes them.
func (c *conn) Do(args ...string) (any, error) {
	if len(args) == 0 {
		return nil, errNoCommand
	}
	rest := make([]any, len(args)-1)
	for i, arg := range args[1:] {
		rest[i] = arg
	}
	v, err := c.do(args[0], rest...)
	if err != nil {
		// redigo returns a server error reply both as the error and as
		// the value; keep only the error.
		return nil, err
	}
	return v, nil
}

// errNoCommand is Do's error when it is given no command.
var errNoCommand = errors.New("redigo: Do needs a command")
