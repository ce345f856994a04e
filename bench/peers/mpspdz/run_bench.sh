#!/usr/bin/env bash
# Runs a compiled program (NAME: the program and its arguments joined by '-', e.g. bench_lenet-1) with the three
# replicated-ring parties on localhost, and prints party 0's output (its Time1 line is the timed region).
set -u
name=$1
port=$((14000 + RANDOM % 1000))
./replicated-ring-party.x -p 1 -h localhost -pn "$port" "$name" > /dev/null 2>&1 &
a=$!
./replicated-ring-party.x -p 2 -h localhost -pn "$port" "$name" > /dev/null 2>&1 &
b=$!
./replicated-ring-party.x -p 0 -h localhost -pn "$port" "$name" 2>&1
wait $a $b
