export { OnLeader } from './on-leader.decorator.js';
