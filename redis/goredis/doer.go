package goredis

import (
	"errors"

	"github.com/redis/go-redis/v9"
)

// Do sends one command as it is given (see redis.Doer), in a batch when the
// Pool batches.
func (c *conn) Do(args ...string) (any, error) {
	if len(args) == 0 {
		return nil, errNoCommand
	}
	cmdArgs := make([]any, len(args))
	for i, arg := range args {
		cmdArgs[i] = arg
	}
	cmd := redis.NewCmd(c.ctx, cmdArgs...)
	if err := c.process(cmd); err != nil {
		return nil, err
	}
	v, err := cmd.Result()
	if err == redis.Nil {
		return nil, nil
	}
	return v, err
}

// errNoCommand is Do's error when it is given no command.
var errNoCommand = errors.New("goredis: Do needs a command")
