package goredis

import (
	"errors"

	"github.com/go-redis/redis/v8"
)

// Do sends one command as it is given (see redis.Doer).
func (c *conn) Do(args ...string) (any, error) {
	if len(args) == 0 {
		return nil, errNoCommand
	}
	cmdArgs := make([]any, len(args))
	for i, arg := range args {
		cmdArgs[i] = arg
	}
	v, err := c.delegate.Do(c.ctx, cmdArgs...).Result()
	if err == redis.Nil {
		return nil, nil
	}
	return v, err
}

// errNoCommand is Do's error when it is given no command.
var errNoCommand = errors.New("goredis: Do needs a command")
