/**
 * `pushline/mqtt`: the `mqtt()` transport, the PushClient API straight on an MQTT broker over
 * MQTT-over-WebSocket. Its own entry: mqtt.js (an optional peer dependency) never enters the other
 * bundles, and this entry loads it only when the transport first connects.
 */
export { mqtt, topicMatches } from './transport.js'
export type { MqttTransportConnectionOptions, MqttTransportOptions } from './transport.js'
export type { MqttMessage } from './payload.js'
