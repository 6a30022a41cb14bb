// `pushline/testing`: a stand-in pushline server on msw, for an app's tests. Node and browsers.
export {
  createPushMock,
  type MockDisconnectOptions,
  type MockPublishOptions,
  type MockTransportName,
  type PushMock,
  type PushMockOptions,
  type RecordedPublish,
  type RecordedSubscription,
} from './push-mock.js'
