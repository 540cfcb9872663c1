import type { Alert } from '@touchstream/contracts';

/** What a webhook receives: the alert object of the contract, plus a chat-ready `text`. */
export type Notice = Alert & { text: string };

const CONDITION_TITLE: Record<Alert['condition'], string> = {
  no_events: 'no events',
  conversion_drop: 'conversion drop',
  below_target: 'below target',
};

/**
 * The alert as one POST body. `text` is Slack-style mrkdwn (also read by Mattermost,
 * Rocket.Chat and Discord's Slack-compatible hooks), so a chat webhook shows it as is.
 */
export function noticeOf(alert: Alert): Notice {
  const subject = `${CONDITION_TITLE[alert.condition]} on step \`${alert.step}\` of journey \`${alert.journey}\``;
  const text =
    alert.state === 'firing'
      ? `:rotating_light: *FIRING*: ${subject}\n${alert.message}\nSince ${alert.started_at} (rule \`${alert.rule_id}\`)`
      : `:white_check_mark: *RESOLVED*: ${subject}\n${alert.message}\nFired ${alert.started_at}, resolved ${alert.resolved_at} (rule \`${alert.rule_id}\`)`;
  return { ...alert, text };
}
