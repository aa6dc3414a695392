// Package deploy holds no code: it is the home of the deployment files'
// tests. The files themselves are docker-compose.yml, the Dockerfile and
// localstack/ at the repository root, and deploy/ecs and deploy/cloudwatch
// here. Without a Docker engine on CI machines, the tests check everything
// that can be checked without one.
package deploy
