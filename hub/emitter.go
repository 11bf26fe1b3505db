package hub

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"time"
)

// Emitter sends to the connections of hubs from a process that serves
// none — a worker, a cron job, a webhook — through their backplane:
//
//	bp, _ := hub.NewRedis("redis://127.0.0.1:6379", hub.RedisOptions{})
//	e := hub.NewEmitter(bp)
//	defer e.Close()
//	e.To("lobby").SendText("the build is green")
//
// Unlike a Hub's, an Emitter's sends wait for the backplane (at most
// Timeout) and return its error: nothing is delivered when it fails.
type Emitter struct {
	bp      Backplane
	node    string
	Timeout time.Duration // per send; default 5 s
}

// NewEmitter returns an emitter publishing through bp.
func NewEmitter(bp Backplane) *Emitter {
	var b [10]byte
	rand.Read(b[:])
	return &Emitter{bp: bp, node: "emitter-" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]), Timeout: 5 * time.Second}
}

// To targets the members of rooms.
func (e *Emitter) To(rooms ...string) Target { return Target{p: e}.To(rooms...) }

// ToID targets connections by id.
func (e *Emitter) ToID(ids ...string) Target { return Target{p: e}.ToID(ids...) }

// ToUser targets every connection of users.
func (e *Emitter) ToUser(users ...string) Target { return Target{p: e}.ToUser(users...) }

// Everyone targets every connection.
func (e *Emitter) Everyone() Target { return Target{p: e, t: target{all: true}} }

func (e *Emitter) publish(env *envelope) error {
	env.origin = e.node
	ctx, cancel := context.WithTimeout(context.Background(), e.Timeout)
	defer cancel()
	return e.bp.Publish(ctx, appendEnvelope(nil, env))
}

// Close closes the backplane.
func (e *Emitter) Close() error { return e.bp.Close() }
