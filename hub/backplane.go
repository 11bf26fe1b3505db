package hub

import (
	"context"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Backplane carries the envelopes of hubs and emitters between
// processes: every hub subscribed receives every envelope published, its
// own included, in the broker's order.
//
// Guarantees, for every backplane here: envelopes from one publisher reach
// every hub in the order published, and all hubs see all envelopes in the
// same order (the broker's). Nothing is stored: what is published while a
// hub's subscription is down never reaches that hub; while its own
// subscription is down, a hub delivers what it publishes to its own
// members only (Stats.Uncrossed counts those). A hub never waits for the
// backplane to send: when the publisher is behind by 4,096 envelopes, the
// next ones are delivered in this process only, counted the same way.
// A broker that stalls without dropping the connection (stopped, out of
// memory) is known to be down once the subscription's ping times out
// (2-4 s): what the hub publishes once the broker answers again while
// its own subscription is still down is delivered to its own members as
// well (Stats.Uncrossed); what other hubs published meanwhile does not
// reach this one.
type Backplane interface {
	// Publish sends one encoded envelope to every subscriber. It may
	// block on the network; a hub calls it from one goroutine of its own.
	Publish(ctx context.Context, envelope []byte) error
	// Subscribe passes every envelope published from now on to deliver,
	// from one goroutine, in the broker's order, until ctx is done. It
	// reconnects by itself, calling state(true, nil) each time the
	// subscription is live and state(false, err) each time it is lost.
	Subscribe(ctx context.Context, deliver func(envelope []byte), state func(up bool, err error))
	// Peers is the number of hubs subscribed now, this one included.
	Peers(ctx context.Context) (int, error)
	// Close releases the backplane's connections.
	Close() error
}

// RedisOptions configure a Redis backplane.
type RedisOptions struct {
	// Channel is the pub/sub channel shared by the hubs and emitters of one
	// app. Default "wsmatrix".
	Channel string
}

// Redis is a Backplane on Redis pub/sub (PUBLISH, SUBSCRIBE, PUBSUB
// NUMSUB), through github.com/redis/go-redis/v9.
type Redis struct {
	client  *redis.Client
	channel string
	url     string // with its password masked
	once    sync.Once
}

var _ Backplane = (*Redis)(nil)

// NewRedis connects lazily to the Redis server at url
// (redis://[user:password@]host:port[/db], or rediss:// for TLS).
func NewRedis(url string, o RedisOptions) (*Redis, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("hub: redis url %q: %w (want redis://[user:password@]host:port[/db], or rediss:// for TLS)", redacted(url), err)
	}
	// Fail fast when Redis is away: a hub delivers locally meanwhile, and
	// an emitter's caller gets the error.
	opt.DialTimeout = time.Second
	opt.ReadTimeout = 2 * time.Second
	opt.WriteTimeout = 2 * time.Second
	opt.MaxRetries = 1
	if o.Channel == "" {
		o.Channel = "wsmatrix"
	}
	return &Redis{client: redis.NewClient(opt), channel: o.Channel, url: redacted(url)}, nil
}

// String is the Redis URL, its password masked: fit for a log line.
func (r *Redis) String() string { return r.url }

// redacted is a Redis URL with its password masked.
func redacted(s string) string {
	u, err := neturl.Parse(s)
	if err != nil {
		return "(not a URL)"
	}
	return u.Redacted()
}

// Publish implements Backplane.
func (r *Redis) Publish(ctx context.Context, envelope []byte) error {
	return r.client.Publish(ctx, r.channel, envelope).Err()
}

// Peers implements Backplane.
func (r *Redis) Peers(ctx context.Context) (int, error) {
	n, err := r.client.PubSubNumSub(ctx, r.channel).Result()
	if err != nil {
		return 0, err
	}
	return int(n[r.channel]), nil
}

// Close implements Backplane.
func (r *Redis) Close() error {
	var err error
	r.once.Do(func() { err = r.client.Close() })
	return err
}

// Subscribe implements Backplane: one SUBSCRIBE connection, checked with a
// PING when silent for 2 s, replaced (backing off from 50 ms to 2 s) when
// it fails.
func (r *Redis) Subscribe(ctx context.Context, deliver func([]byte), state func(bool, error)) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := r.subscribeOnce(ctx, deliver, state, &backoff)
		if ctx.Err() != nil {
			return
		}
		state(false, err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (r *Redis) subscribeOnce(ctx context.Context, deliver func([]byte), state func(bool, error), backoff *time.Duration) error {
	ps := r.client.Subscribe(ctx)
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { ps.Close() }) // unblocks a receive at once
	defer stop()
	if err := ps.Subscribe(ctx, r.channel); err != nil {
		return err
	}
	// The confirmation says the subscription is live.
	for {
		msg, err := ps.ReceiveTimeout(ctx, 2*time.Second)
		if err != nil {
			return err
		}
		if s, ok := msg.(*redis.Subscription); ok && s.Kind == "subscribe" {
			break
		}
	}
	state(true, nil)
	*backoff = 50 * time.Millisecond
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, 2*time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged && ctx.Err() == nil {
				pinged = true
				if err := ps.Ping(ctx); err != nil {
					return err
				}
				continue
			}
			return err
		}
		pinged = false
		if m, ok := msg.(*redis.Message); ok {
			deliver([]byte(m.Payload))
		}
	}
}
