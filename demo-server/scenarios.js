// The server side of the demo's six scenarios: what each publishes, and what pages may publish.
// The data is simulated (there is no real shop, config store or house behind it), but every message
// travels through pushline exactly as an application's would.
//
//   unread badge   `notifications`  the badge's count and the latest five, about every 6 s
//   config center  `config`         the whole config, once at start and after every edit
//   orders         `orders`         order status changes, about every 2 s (presence: who watches)
//   chat           `chat:<room>`    room messages (presence: who is online)
//                  `typing:<room>`  "alice is typing" (published by pages, at most every 2 s)
//                  `dm:<a>:<b>`     private messages: only users a and b may subscribe or publish
//   smart home     `home/...`       MQTT devices through the bridge (mqtt-devices.js)
//   counter        `counter`        a number, every second (the iframe stream's classic example)
//   (negotiation)  `ticks`          numbered messages in bursts, for the network switch's sequence check

import { PushError } from 'pushline/server'

export const USERS = ['alice', 'bob', 'carol']
export const ROOMS = ['general', 'random']
const MAX_CHAT_CHARS = 500

/** The users of a DM channel (`dm:<a>:<b>`, names sorted so both users name the same one), or undefined if `channel` is not one between two known users. */
function dmUsers(channel) {
  const match = /^dm:([a-z]+):([a-z]+)$/.exec(channel)
  if (!match || match[1] === match[2] || !USERS.includes(match[1]) || !USERS.includes(match[2])) return undefined
  return [match[1], match[2]]
}

const roomOf = (channel) => {
  const match = /^(?:chat|typing):(.+)$/.exec(channel)
  return match && ROOMS.includes(match[1]) ? match[1] : undefined
}

/** Which channels tell their subscribers who else is there. */
export const presence = (channel) => channel === 'orders' || (channel.startsWith('chat:') && roomOf(channel) !== undefined)

/**
 * Per-channel authorization (the server's `authorize`): rooms must exist, and a DM channel is
 * visible to its two users only. Anonymous pages may read everything else.
 */
export function authorize({ identity, channel }) {
  if (channel.startsWith('dm:')) {
    const users = dmUsers(channel)
    if (!users) throw new PushError('SUBSCRIBE_REJECTED', `${channel} is not a DM channel between two demo users`)
    return identity !== undefined && users.includes(identity.userId)
  }
  if (/^(chat|typing):/.test(channel)) return roomOf(channel) !== undefined
  return true
}

// ---- config center -------------------------------------------------------------------------------

const FLAGS = ['newCheckout', 'darkMode', 'betaSearch']
let config = { flags: { newCheckout: false, darkMode: true, betaSearch: false }, rateLimitPerMinute: 600, editedBy: 'server', at: new Date().toISOString() }

/** A config edit from a page must be the whole config: every flag a boolean, a sane rate limit. */
function checkConfig(data) {
  const flags = data?.flags
  if (typeof flags !== 'object' || flags === null) throw new PushError('PUBLISH_REJECTED', 'config.flags must be an object')
  for (const flag of FLAGS) {
    if (typeof flags[flag] !== 'boolean') throw new PushError('PUBLISH_REJECTED', `config.flags.${flag} must be true or false`)
  }
  const limit = data.rateLimitPerMinute
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) {
    throw new PushError('PUBLISH_REJECTED', 'config.rateLimitPerMinute must be an integer from 1 to 100000')
  }
  return { flags: Object.fromEntries(FLAGS.map((flag) => [flag, flags[flag]])), rateLimitPerMinute: limit }
}

// ---- page publishes ------------------------------------------------------------------------------

/**
 * The server's `onPublish`: pages may publish chat and DM text and typing notices when signed in,
 * config edits, and light commands (`lightCommands`, checked by the smart home). The server stamps
 * who and when, so a page cannot speak for another user.
 */
export function onPublish(context, lightCommands) {
  const { channel, data, identity } = context
  if (channel === lightCommands.channel) return lightCommands.onPublish(context)
  if (channel === 'config') {
    config = { ...checkConfig(data), editedBy: identity?.userId ?? 'anonymous', at: new Date().toISOString() }
    return { event: 'config', data: config }
  }
  if (roomOf(channel) !== undefined || dmUsers(channel)) {
    if (!identity) throw new PushError('PUBLISH_REJECTED', 'sign in to chat')
    const at = new Date().toISOString()
    if (channel.startsWith('typing:')) return { event: 'typing', data: { from: identity.userId, at } }
    const text = typeof data === 'object' && data !== null ? data.text : undefined
    if (typeof text !== 'string' || text.trim() === '') throw new PushError('PUBLISH_REJECTED', 'message is empty')
    if ([...text].length > MAX_CHAT_CHARS) throw new PushError('PUBLISH_REJECTED', `message is longer than ${MAX_CHAT_CHARS} characters`)
    return { event: 'message', data: { from: identity.userId, text, at } }
  }
  throw new PushError('PUBLISH_REJECTED', `${channel} is read-only for browsers`)
}

// ---- feeds ---------------------------------------------------------------------------------------

/**
 * Starts the simulated feeds on `push`; returns the badge's mark-all-read, and stop(). Pages
 * subscribe with `rewind` to see the current state (the newest messages) at once.
 */
export async function startFeeds(push) {
  // Orders: an e-commerce back office where staff must see status changes at once.
  const ORDER_FLOW = ['created', 'paid', 'packed', 'shipped', 'delivered']
  const CUSTOMERS = ['Li Wei', 'Zhang Min', 'Wang Fang', 'Chen Jie', 'Liu Yang', 'Zhao Lei']
  let nextOrderId = 10_231
  const openOrders = []

  async function orderTick() {
    // Keep three to five orders in flight; advance one of them per tick.
    const order =
      openOrders.length < 3 || (openOrders.length < 5 && Math.random() < 0.3)
        ? newOrder()
        : openOrders[Math.floor(Math.random() * openOrders.length)]
    const status = ORDER_FLOW[order.step]
    const at = new Date().toISOString()
    const update = { orderId: order.orderId, customer: order.customer, amount: order.amount, status, at }
    await push.publish('orders', update, { event: 'order-update' })
    order.step += 1
    if (order.step >= ORDER_FLOW.length) openOrders.splice(openOrders.indexOf(order), 1)
  }
  function newOrder() {
    const customer = CUSTOMERS[Math.floor(Math.random() * CUSTOMERS.length)]
    const order = { orderId: nextOrderId++, customer, amount: Math.round((20 + Math.random() * 480) * 100) / 100, step: 0 }
    openOrders.push(order)
    return order
  }

  // Unread badge: the count and the latest five, as the classic `/unread-count` endpoint answers.
  const NOTICES = [
    'Your invoice for October is ready',
    'A customer left a 5-star review',
    'Stock of "USB-C cable" is below 10',
    'Refund request for order #10198',
    'New login from Chrome on Windows',
  ]
  let unread = []
  const publishBadge = () => {
    const data = { unread: unread.length, latest: unread.slice(-5).reverse(), at: new Date().toISOString() }
    return push.publish('notifications', data, { event: 'unread-count' })
  }
  async function notificationTick() {
    unread.push({ text: NOTICES[Math.floor(Math.random() * NOTICES.length)], at: new Date().toISOString() })
    if (unread.length > 99) unread = unread.slice(-99)
    await publishBadge()
  }

  // Counter: the iframe stream's classic example, a number that goes up every second.
  let count = 0
  const counterTick = () => push.publish('counter', { count: ++count, at: new Date().toISOString() }, { event: 'count' })

  // Ticks for the negotiation card: a burst of four numbered messages every 4 s, then silence. The
  // burst tests order; the silence is what an idle-cutting proxy cuts.
  let tick = 0
  async function tickBurst() {
    for (let i = 0; i < 4; i++) {
      await push.publish('ticks', { n: ++tick, at: new Date().toISOString() }, { event: 'tick' })
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  // The config's first value is in history from the start, for pages that subscribe with rewind: 1.
  await push.publish('config', config, { event: 'config' })

  const stops = [every(2_000, orderTick), every(6_000, notificationTick), every(1_000, counterTick, 0), every(4_000, tickBurst, 0)]
  return {
    async markAllRead() {
      unread = []
      await publishBadge()
    },
    stop() {
      for (const stop of stops) stop()
    },
  }
}

/** Runs `task` every `ms` ± `jitter` (a fraction), logging (not crashing on) failures. */
function every(ms, task, jitter = 0.25) {
  let timer
  const schedule = () => {
    timer = setTimeout(async () => {
      try {
        await task()
      } catch (error) {
        console.error(`demo: feed failed: ${error.message}`)
      }
      schedule()
    }, ms * (1 - jitter + Math.random() * 2 * jitter))
  }
  schedule()
  return () => clearTimeout(timer)
}
