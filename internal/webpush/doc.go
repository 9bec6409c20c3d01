// Package webpush is the hub's Web Push sender, built on the standard
// library only.
//
// It covers the whole path from a browser's PushSubscription to a
// notification on the operator's phone or desktop:
//
//   - Keys: the hub's VAPID key pair (P-256), loaded from the environment or
//     generated once and kept in a 0600 file in the data directory, so browser
//     subscriptions stay valid across restarts (the original hub made new keys
//     at every start, which silently broke every subscription).
//   - Subscription: the JSON a browser's PushSubscription.toJSON() produces,
//     with strict validation of the endpoint and keys.
//   - Message encryption per RFC 8291 (aes128gcm content coding, RFC 8188).
//   - VAPID authorization per RFC 8292 (an ES256 JWT per push service).
//   - Sender: encrypts one payload and POSTs it to one push service,
//     reporting dead subscriptions as ErrGone.
//   - Subscriptions: the persistent subscription set, in the
//     push subscription store (storage.PushSubscriptionStore), keyed by endpoint.
//   - Notifier: fans one payload out to every stored subscription with a
//     concurrency bound and drops the ones the push service says are gone.
//
// Which events notify, and cooldowns, are the dashboard's business.
package webpush
