import { journeyBody } from '@touchstream/contracts';
import { definitionTable } from './definitions.js';

const journeys = definitionTable('journeys', journeyBody);

export const saveJourney = journeys.save;
export const deleteJourney = journeys.remove;
export const listJourneys = journeys.list;
export const getJourney = journeys.get;
