export { CONFIG_VARIABLES, type Config, ConfigError, loadConfig } from './config.js';
