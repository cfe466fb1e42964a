// pm2 start ecosystem.config.js   (settings come from miner.env; see miner.env.example)
module.exports = {
  apps: [
    {
      name: "natix_miner",
      script: "run_miner.sh",
      interpreter: "bash",
      cwd: __dirname,
      autorestart: true,
      restart_delay: 5000,
      kill_timeout: 20000, // time for a clean shutdown before pm2 sends SIGKILL
    },
  ],
};
