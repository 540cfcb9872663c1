import { alertRuleBody } from '@touchstream/contracts';
import { definitionTable } from './definitions.js';

const alertRules = definitionTable('alert_rules', alertRuleBody);

export const saveAlertRule = alertRules.save;
export const deleteAlertRule = alertRules.remove;
export const listAlertRules = alertRules.list;
export const getAlertRule = alertRules.get;
