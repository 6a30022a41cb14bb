/**
 * `pushline/mqtt-bridge`: connects a `pushline/server` to an MQTT broker. Its own entry, so that
 * servers without MQTT never load mqtt.js (an optional peer dependency).
 */
export { mqttBridge } from './bridge.js'
export type {
  MqttBridge,
  MqttBridgeLogger,
  MqttBridgeOptions,
  MqttBridgeReconnectOptions,
  MqttBridgeStats,
  MqttConnectionOptions,
  MqttMessage,
} from './options.js'
