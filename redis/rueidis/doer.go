package rueidis

import (
	"errors"

	"github.com/redis/rueidis"
)

// Do sends one command as it is given (see redis.Doer), through the
// underlying rueidis.Client. A map reply (RESP3) comes back as a
// map[string]any.
func (c *conn) Do(args ...string) (any, error) {
	if len(args) == 0 {
		return nil, errNoCommand
	}
	client := c.delegate.Client()
	v, err := client.Do(c.ctx, client.B().Arbitrary(args...).Build()).ToAny()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	return v, err
}

// errNoCommand is Do's error when it is given no command.
var errNoCommand = errors.New("rueidis: Do needs a command")
