export { type Alerter, type AlerterDeps, buildAlerter } from './alerter.js';
export { type Judgement, judge } from './judge.js';
export { type Notice, noticeOf } from './notice.js';
export { DEFAULT_DELIVERY, type DeliveryOptions, deliverNotice } from './notifier.js';
export { nextState, type RuleState, type Verdict } from './rule-state.js';
export { evaluationOffsets } from './schedule.js';
export { isInternalAddress, webhookTargetProblem } from './webhook-target.js';
